; Infinite-loop guest (format raw, mode protected, load_address 0x100000): prints a line
; and then spins forever without exits; only kill (or shutdown) ends it.
%include "com1.inc"
bits 32
org 0x100000
start:  mov esp, 0x80000
        mov esi, msg
        call puts
.spin:  jmp .spin
DEFINE_PUTS
msg:    db "looping", 10, 0
