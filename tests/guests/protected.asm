; Protected-mode guest (format raw, mode protected, load_address 0x100000): prints a
; line on COM1 from flat 32-bit code, then exits with status 0.
%include "com1.inc"
bits 32
org 0x100000
start:  mov esp, 0x80000
        mov esi, msg
        call puts
        EXIT 0
DEFINE_PUTS
msg:    db "protected mode ok", 10, 0
