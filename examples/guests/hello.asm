; hello.asm: the smallest useful guest. A raw 32-bit protected-mode payload (format "raw",
; mode "protected", loaded at 1 MiB) that computes 1 + 2 + ... + 100, prints the result on
; the COM1 serial port (the domain's console) and ends the machine by writing its exit
; status to the debug-exit port. Build: nasm -f bin -o hello.bin hello.asm
bits 32
org 0x100000

COM1      equ 0x3f8
DEBUG_EXIT equ 0xf4

start:
        mov esp, stack_top
        mov esi, greeting
        call puts

        xor eax, eax            ; eax = 1 + 2 + ... + 100
        mov ecx, 100
.sum:   add eax, ecx
        loop .sum
        call putu
        mov esi, newline
        call puts

        mov al, 0               ; exit status 0
        out DEBUG_EXIT, al
.halt:  hlt                     ; not reached on vmcore; spin if the port is absent
        jmp .halt

; puts: write the NUL-terminated string at esi to COM1
puts:   mov dx, COM1
.next:  lodsb
        test al, al
        jz .done
        out dx, al
        jmp .next
.done:  ret

; putu: write eax as a decimal number to COM1
putu:   mov ebx, 10
        mov edi, digits_end
.div:   xor edx, edx
        div ebx
        add dl, '0'
        dec edi
        mov [edi], dl
        test eax, eax
        jnz .div
        mov esi, edi
        jmp puts                ; digits_end holds the terminating NUL

greeting: db "hello from a vmcore guest: 1 + 2 + ... + 100 = ", 0
newline:  db 13, 10, 0
digits:   times 12 db 0
digits_end: db 0

align 16
          times 256 db 0
stack_top:
