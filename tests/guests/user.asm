; CPL3 guest (format raw, mode long, load_address 0x100000): installs its own GDT and a
; 64-bit TSS whose I/O bitmap allows every port, drops to ring 3 through iretq (IOPL 3),
; checks CS's RPL, spins 10 million iterations (native speed under KVM, even where CPL0
; is emulated), prints "user mode ok" from ring 3 and exits with status 0 (3 if not in
; ring 3).
; The I/O bitmap matters where CPL3 runs on the real CPU and CPL0 is emulated (PVM): the
; port access faults in hardware and the emulator checks the TSS bitmap, not IOPL.
%include "com1.inc"
bits 64
org 0x100000

SEL_CODE   equ 0x08
SEL_DATA   equ 0x10
SEL_UDATA  equ 0x18 | 3
SEL_UCODE  equ 0x20 | 3
SEL_TSS    equ 0x28
TSS_BASE   equ tss - $$ + 0x100000
TSS_LIMIT  equ tss_end - tss - 1

start:  mov rsp, 0x80000
        lgdt [gdtr]
        push SEL_CODE
        lea rax, [rel .reload]
        push rax
        retfq
.reload:
        mov ax, SEL_DATA
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov ax, SEL_TSS
        ltr ax
        push SEL_UDATA          ; ss
        push 0x70000            ; rsp
        push 0x3002             ; rflags: IOPL 3, interrupts off
        push SEL_UCODE          ; cs
        lea rax, [rel user]
        push rax
        iretq
user:   mov ax, cs
        and ax, 3
        cmp ax, 3
        jne .bad
        mov ecx, 10000000
.spin:  dec ecx
        jnz .spin
        lea rsi, [rel msg]
        call puts
        EXIT 0
.bad:   EXIT 3
DEFINE_PUTS
msg:    db "user mode ok", 10, 0

align 8
gdt:    dq 0
        dq 0x00209a0000000000   ; 0x08 code, 64-bit, DPL 0
        dq 0x0000920000000000   ; 0x10 data, DPL 0
        dq 0x0000f20000000000   ; 0x18 data, DPL 3
        dq 0x0020fa0000000000   ; 0x20 code, 64-bit, DPL 3
        dw TSS_LIMIT & 0xffff   ; 0x28 available 64-bit TSS (16 bytes)
        dw TSS_BASE & 0xffff
        db (TSS_BASE >> 16) & 0xff
        db 0x89
        db (TSS_LIMIT >> 16) & 0x0f
        db (TSS_BASE >> 24) & 0xff
        dd 0
        dd 0
gdt_end:
gdtr:   dw gdt_end - gdt - 1
        dq gdt - $$ + 0x100000

align 16
tss:    times 0x66 db 0
        dw 0x68                 ; I/O bitmap right after the 104-byte TSS
        times 8192 db 0         ; every port allowed
        db 0xff                 ; the bitmap's terminating byte
tss_end:
