; Interrupt guest for the snapshot tests (format raw, mode protected, load_address
; 0x100000): takes the PIT (1 kHz, IOAPIC pin 2, vector 0x30) and the local APIC timer
; (periodic, 1 ms, vector 0x40) with both PICs and LINT0 masked, halting between
; interrupts; prints "tick NN" each time 20 more PIT ticks have arrived, 20 times, then
; "ready", waits (interrupts off) for one byte on COM1, prints "lapic ok" if the APIC timer
; fired too, and exits 0 (1: no APIC timer interrupt; 2: an interrupt came through the
; PIC). Its output does not depend on timing: a run saved and
; restored anywhere prints the same.
%include "com1.inc"
bits 32
org 0x100000
IOAPIC  equ 0xfec00000
LAPIC   equ 0xfee00000
IDT     equ 0x110000

start:  mov esp, 0x80000
        mov eax, timer
        mov ecx, 0x30
        call setgate
        mov eax, apic_timer
        mov ecx, 0x40
        call setgate
        mov eax, via_pic
        mov ecx, 0x08
        call setgate
        lidt [idtr]
        mov al, 0xff                    ; mask both PICs
        out 0x21, al
        out 0xa1, al
        mov dword [LAPIC + 0xf0], 0x1ff     ; SVR: enabled, spurious vector 0xff
        mov dword [LAPIC + 0x350], 0x10700  ; LINT0: ExtINT, masked
        mov dword [LAPIC + 0x3e0], 0xb      ; timer divide by 1
        mov dword [LAPIC + 0x320], 0x20040  ; timer: periodic, vector 0x40
        mov dword [LAPIC + 0x380], 1000000  ; 1 ms at the 1 GHz bus clock
        mov eax, 0x15                   ; pin 2, high half: destination APIC 0
        xor ebx, ebx
        call ioapic_write
        mov eax, 0x14                   ; pin 2, low half: vector 0x30, edge, unmasked
        mov ebx, 0x30
        call ioapic_write
        mov al, 0x34                    ; PIT channel 0: mode 2, low then high byte
        out 0x43, al
        mov ax, 1193                    ; 1 ms
        out 0x40, al
        mov al, ah
        out 0x40, al
        xor edi, edi                    ; lines printed
        sti
.wait:  hlt
        mov eax, edi
        inc eax
        imul eax, eax, 20
        cmp [ticks], eax
        jb .wait
        inc edi
        cli
        mov esi, m_tick
        call puts
        mov eax, edi                    ; two decimal digits
        xor edx, edx
        mov ebx, 10
        div ebx
        add al, '0'
        mov dx, COM1
        out dx, al
        mov eax, edi
        xor edx, edx
        div ebx
        mov al, dl
        add al, '0'
        mov dx, COM1
        out dx, al
        mov al, 10
        out dx, al
        sti
        cmp edi, 20
        jb .wait
        cli
        mov esi, m_ready
        call puts
.in:    mov dx, COM1_LSR
        in al, dx
        test al, 1
        jz .in
        mov dx, COM1
        in al, dx
        cmp dword [lticks], 0
        jne .ok
        EXIT 1
.ok:    mov esi, m_lapic
        call puts
        EXIT 0

ioapic_write:                           ; register eax := ebx
        mov [IOAPIC], eax
        mov [IOAPIC + 0x10], ebx
        ret
setgate:                                ; IDT gate ecx -> handler eax
        push edi
        lea edi, [IDT + ecx * 8]
        mov [edi], ax
        mov dx, cs
        mov [edi + 2], dx
        mov word [edi + 4], 0x8e00
        shr eax, 16
        mov [edi + 6], ax
        pop edi
        ret

timer:  inc dword [ticks]
        mov dword [LAPIC + 0xb0], 0     ; EOI
        iret
apic_timer:
        inc dword [lticks]
        mov dword [LAPIC + 0xb0], 0
        iret
via_pic: EXIT 2

DEFINE_PUTS
m_tick:  db "tick ", 0
m_lapic: db "lapic ok", 10, 0
m_ready: db "ready", 10, 0
align 4
ticks:  dd 0
lticks: dd 0
idtr:   dw 256 * 8 - 1
        dd IDT
