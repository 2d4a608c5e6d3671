// Model-specific register numbers the simulated CPUs know (Intel SDM vol. 4).
// Layer: hypervisor/arch.

export const MSR_IA32_TSC = 0x10;
/** MSR_PLATFORM_INFO: bits 15:8 are the TSC's ratio to the 100 MHz bus clock. */
export const MSR_PLATFORM_INFO = 0xce;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
/** x2APIC registers as MSRs: EOI, the LVT timer (vector in bits 7:0), the timer's counts. */
export const MSR_X2APIC_EOI = 0x80b;
export const MSR_X2APIC_LVT_TIMER = 0x832;
export const MSR_X2APIC_INIT_COUNT = 0x838;
export const MSR_X2APIC_CUR_COUNT = 0x839;
export const MSR_X2APIC_DIV_CONF = 0x83e;
export const MSR_EFER = 0xc0000080;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_SHADOW_GS_BASE = 0xc0000102;
