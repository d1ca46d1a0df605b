; String-I/O guest (format raw, mode protected, load_address 0x100000): prints its line
; with one REP OUTSB to COM1 (a single port-I/O exit carrying many bytes under KVM), then
; exits with status 0.
%include "com1.inc"
bits 32
org 0x100000
start:  mov esp, 0x80000
        cld
        mov esi, msg
        mov ecx, msg_len
        mov dx, COM1
        rep outsb
        EXIT 0
msg:    db "string io ok", 10
msg_len equ $ - msg
