; Exit-status guest (format raw, mode protected, load_address 0x100000): ends the machine
; with status 42 through the debug-exit port, printing nothing.
%include "com1.inc"
bits 32
org 0x100000
start:  EXIT 42
