; checksum.asm: a raw 32-bit protected-mode guest (loaded at 1 MiB) for the Python binding
; tests. It fills 4 KiB with (i * 7 + 3) & 0xff, hashes them with 32-bit FNV-1a, prints
; "checksum=XXXXXXXX" (hex) and a CR LF on COM1, and exits through the debug-exit port with
; the low byte of the hash as its status. conftest.fnv1a() computes the expected value.
bits 32
org 0x100000

COM1       equ 0x3f8
DEBUG_EXIT equ 0xf4
COUNT      equ 4096

start:
        mov esp, stack_top
        xor ecx, ecx                ; fill buffer[i] = i * 7 + 3
.fill:  lea eax, [ecx * 8]
        sub eax, ecx
        add eax, 3
        mov [buffer + ecx], al
        inc ecx
        cmp ecx, COUNT
        jb .fill

        mov eax, 0x811c9dc5         ; FNV-1a
        xor ecx, ecx
.hash:  movzx edx, byte [buffer + ecx]
        xor eax, edx
        imul eax, eax, 0x01000193
        inc ecx
        cmp ecx, COUNT
        jb .hash
        mov ebp, eax

        mov esi, label
        call puts
        mov ecx, 8                  ; eight hex digits, most significant first
.hex:   rol ebp, 4
        mov eax, ebp
        and eax, 0xf
        mov al, [digits + eax]
        mov dx, COM1
        out dx, al
        loop .hex
        mov esi, crlf
        call puts

        mov eax, ebp
        out DEBUG_EXIT, al
.halt:  hlt
        jmp .halt

puts:   mov dx, COM1                ; write the NUL-terminated string at esi
.next:  lodsb
        test al, al
        jz .done
        out dx, al
        jmp .next
.done:  ret

label:  db "checksum=", 0
crlf:   db 13, 10, 0
digits: db "0123456789abcdef"

align 16
        times 256 db 0
stack_top:
buffer: times COUNT db 0
