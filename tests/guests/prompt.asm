; Prompt guest (format raw, mode protected, load_address 0x100000): prints "prompt> "
; without a newline and halts with interrupts off, so no exit ever follows the output:
; the console must still show it. Only kill (or shutdown) ends it.
%include "com1.inc"
bits 32
org 0x100000
start:  mov esp, 0x80000
        mov esi, msg
        call puts
        cli
.halt:  hlt
        jmp .halt
DEFINE_PUTS
msg:    db "prompt> ", 0
