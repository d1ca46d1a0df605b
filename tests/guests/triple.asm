; Triple-fault guest (format raw, mode protected, load_address 0x100000): prints a line,
; loads an empty IDT and raises #BP; with no IDT the exception becomes a double and then a
; triple fault, which shuts the CPU down. The machine must report a crash.
%include "com1.inc"
bits 32
org 0x100000
start:  mov esp, 0x80000
        mov esi, msg
        call puts
        lidt [null_idt]
        ud2
        EXIT 99         ; not reached
DEFINE_PUTS
null_idt: dw 0
          dd 0
msg:    db "about to triple fault", 10, 0
