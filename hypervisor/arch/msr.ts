// Model-specific register numbers the simulated CPUs know (Intel SDM vol. 4).
// Layer: hypervisor/arch.

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
/** x2APIC registers as MSRs: EOI and the LVT timer (vector in bits 7:0). */
export const MSR_X2APIC_EOI = 0x80b;
export const MSR_X2APIC_LVT_TIMER = 0x832;
export const MSR_EFER = 0xc0000080;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_SHADOW_GS_BASE = 0xc0000102;
