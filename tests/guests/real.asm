; Real-mode guest (format raw, mode real, load_address 0x7c00): prints a line on COM1
; with 16-bit code and segment arithmetic, then exits with status 0.
%include "com1.inc"
bits 16
org 0x7c00
start:  cli
        xor ax, ax
        mov ss, ax
        mov sp, 0x7c00
        ; read the message through DS=0x07c0 to exercise real-mode segment arithmetic
        mov ax, 0x07c0
        mov ds, ax
        mov si, msg - $$
        call puts
        EXIT 0
DEFINE_PUTS
msg:    db "real mode ok", 10, 0
