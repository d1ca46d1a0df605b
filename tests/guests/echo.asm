; Console-input guest (format raw, mode protected, load_address 0x100000): prints
; "echo ready", then echoes every byte received on COM1 (polling the line status register)
; until it receives 'q', and exits with status 0.
%include "com1.inc"
bits 32
org 0x100000
start:  mov esp, 0x80000
        mov esi, msg
        call puts
.wait:  mov dx, COM1_LSR
        in al, dx
        test al, 1
        jz .wait
        mov dx, COM1
        in al, dx
        cmp al, 'q'
        je .quit
        out dx, al
        jmp .wait
.quit:  EXIT 0
DEFINE_PUTS
msg:    db "echo ready", 10, 0
