; Long-mode guest (format raw, mode long, load_address 0x100000; also linked as the ELF64
; guest long.elf): checks that it runs in 64-bit mode (a 64-bit register keeps its upper
; half), prints a line on COM1, and exits with status 0 (or 1 if the check failed).
%include "com1.inc"
bits 64
%ifdef ELF
section .text
global start
%else
org 0x100000
%endif
start:  mov rsp, 0x80000
        mov rax, 0x123456789
        shr rax, 32
        cmp eax, 1
        jne .bad
        lea rsi, [rel msg]
        call puts
        EXIT 0
.bad:   EXIT 1
DEFINE_PUTS
msg:    db "long mode ok", 10, 0
