; Compute guest for the snapshot tests (format raw, mode long, load_address 0x100000, at
; least 16 MiB of RAM): 25 steps that each mix 400000 pseudo-random values into a 1 MiB
; table (at 4 MiB) and a running sum, printing "step NN sum <16 hex digits>" after each;
; then "ready", a wait for one byte on COM1 (so that a test decides when it ends), and
; "checksum <16 hex digits>" over the whole table and the sum; exit status 0. The output
; depends on nothing but the code: an uninterrupted run and a saved and restored one must
; print the same.
%include "com1.inc"
bits 64
org 0x100000
TABLE   equ 0x400000
NQ      equ 131072              ; qwords in the table (1 MiB)
STEPS   equ 25
ITER    equ 400000

start:  mov rsp, 0x80000
        mov r12, 0x9e3779b97f4a7c15     ; generator state
        xor r13, r13                    ; running sum
        xor r14, r14                    ; steps done
        mov r15, 6364136223846793005    ; multiplier
.step:  mov ecx, ITER
.it:    imul r12, r15
        mov rax, 1442695040888963407
        add r12, rax
        mov rax, r12
        shr rax, 20
        and eax, NQ - 1
        xor [TABLE + rax * 8], r12
        mov rbx, [TABLE + rax * 8]
        rol r13, 7
        xor r13, rbx
        add r13, rcx
        dec ecx
        jnz .it
        inc r14
        mov esi, m_step
        call puts
        mov rax, r14                    ; two decimal digits
        xor edx, edx
        mov ebx, 10
        div rbx
        add al, '0'
        mov dx, COM1
        out dx, al
        mov rax, r14
        xor edx, edx
        div rbx
        mov al, dl
        add al, '0'
        mov dx, COM1
        out dx, al
        mov esi, m_sum
        call puts
        mov rax, r13
        call puthex
        mov esi, m_nl
        call puts
        cmp r14, STEPS
        jb .step

        mov esi, m_ready
        call puts
.wait:  mov dx, COM1_LSR
        in al, dx
        test al, 1
        jz .wait
        mov dx, COM1
        in al, dx

        mov rax, r13                    ; fold the table into the sum
        xor ecx, ecx
.fold:  rol rax, 13
        xor rax, [TABLE + rcx * 8]
        imul rax, r15
        inc ecx
        cmp ecx, NQ
        jb .fold
        push rax
        mov esi, m_check
        call puts
        pop rax
        call puthex
        mov esi, m_nl
        call puts
        EXIT 0

; puthex: rax as 16 hex digits on COM1
puthex: mov rbx, rax
        mov ecx, 16
        mov dx, COM1
.d:     rol rbx, 4
        mov al, bl
        and al, 15
        add al, '0'
        cmp al, '9'
        jbe .o
        add al, 'a' - '9' - 1
.o:     out dx, al
        dec ecx
        jnz .d
        ret

DEFINE_PUTS
m_step:  db "step ", 0
m_sum:   db " sum ", 0
m_nl:    db 10, 0
m_ready: db "ready", 10, 0
m_check: db "checksum ", 0
