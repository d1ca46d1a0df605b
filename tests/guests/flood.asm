; Console flood guest (format raw, mode protected, load_address 0x100000): writes the line
; "ABCDEFGHIJKLMNOPQRSTUVWXYZ\n" to COM1 forever, as fast as it can, never polling the
; line status; only kill (or shutdown) ends it. The tests of console back-pressure check
; that every byte arrives, in this order, while the host's memory stays bounded.
%include "com1.inc"
bits 32
org 0x100000
start:  mov esp, 0x80000
        mov dx, COM1
.line:  mov al, 'A'
.next:  out dx, al
        inc al
        cmp al, 'Z' + 1
        jne .next
        mov al, 10
        out dx, al
        jmp .line
