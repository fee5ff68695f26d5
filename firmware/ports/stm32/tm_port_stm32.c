/*
 * tm_port_stm32.c - tm_port.h for ST Nucleo boards, without ST's HAL.
 *
 *   STM32F446RE (Nucleo-64, -DSTM32F446xx): HSI 16 MHz -> PLL -> 180 MHz
 *     (voltage scale 1 + over-drive, 5 flash wait states); USART2 on PA2/PA3
 *     at APB1 = 45 MHz, routed to the ST-LINK virtual COM port.
 *   STM32H743ZI (Nucleo-144, -DSTM32H743xx): HSI 64 MHz -> PLL1 -> 480 MHz
 *     (LDO supply, VOS0, AXI at 240 MHz with 4 wait states); USART3 on PD8/PD9
 *     at APB1 = 120 MHz, routed to the ST-LINK virtual COM port. I- and D-cache on.
 *
 * HSI rather than HSE: the Nucleo's 8 MHz HSE comes from the ST-LINK MCO only
 * when solder bridges are in their factory state, HSI is always there.
 *
 * Timer: DWT->CYCCNT (32 bits, core cycles) extended to 64 bits in software;
 * SysTick interrupts every 2^24 cycles so the extension never misses a wrap.
 * UART reception: RXNE interrupt into a 4 KiB ring buffer.
 */
#include "tm_port.h"

#include <stdint.h>

#include "stm32_regs.h"

#ifndef TM_UART_BAUD
#define TM_UART_BAUD 115200u
#endif

#define TM_RX_RING_BYTES 4096u
#include "tm_rx_ring.h"
#define SYSTICK_PERIOD 0x01000000u

#if defined(STM32F446xx)
#define PORT_BOARD "nucleo_f446re"
#define PORT_CLOCK_HZ 180000000u
#define UART_CLOCK_HZ 45000000u /* APB1 = HCLK / 4 */
#define UART_IRQN USART2_IRQN
#elif defined(STM32H743xx)
#define PORT_BOARD "nucleo_h743zi"
#define PORT_CLOCK_HZ 480000000u
#define UART_CLOCK_HZ 120000000u /* APB1 = HCLK / 2 = sys_ck / 4 */
#define UART_IRQN USART3_IRQN
#endif
#ifndef TINYML_BOARD_NAME
#define TINYML_BOARD_NAME PORT_BOARD
#endif

void SysTick_Handler(void);
void USART2_IRQHandler(void);
void USART3_IRQHandler(void);

static tm_rx_ring_t rx_ring;

static uint32_t timer_high; /* wraps of DWT_CYCCNT seen so far */
static uint32_t timer_last_low;

static const tm_port_info_t port_info = {
    .board = TINYML_BOARD_NAME,
    .clock_hz = PORT_CLOCK_HZ,
    .latency_unit = TM_UNIT_CYCLES,
    .rx_buffer_bytes = TM_RX_RING_BYTES,
};

static inline void barrier_dsb_isb(void) {
    __asm__ volatile("dsb 0xF\n\tisb 0xF" ::: "memory");
}

static inline uint32_t irq_save(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask) {
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

#if defined(STM32F446xx)

static void clock_init(void) {
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* read back: the enable takes effect before PWR is touched */
    PWR_CR = (PWR_CR & ~(0x3u << 14)) | PWR_CR_VOS_SCALE1;

    RCC_CR |= RCC_CR_HSION;
    while ((RCC_CR & RCC_CR_HSIRDY) == 0u) {
    }
    /* VCO in = 16 MHz / M(8) = 2 MHz; VCO = 2 MHz * N(180) = 360 MHz;
     * SYSCLK = VCO / P(2) = 180 MHz; Q = 7, R = 2 (unused, kept in range). */
    RCC_PLLCFGR = 8u | (180u << 6) | (0u << 16) | (0u << 22) | (7u << 24) | (2u << 28);
    RCC_CR |= RCC_CR_PLLON;
    while ((RCC_CR & RCC_CR_PLLRDY) == 0u) {
    }
    /* 180 MHz needs over-drive (RM0390 5.1.4): enable, then switch. */
    PWR_CR |= PWR_CR_ODEN;
    while ((PWR_CSR & PWR_CSR_ODRDY) == 0u) {
    }
    PWR_CR |= PWR_CR_ODSWEN;
    while ((PWR_CSR & PWR_CSR_ODSWRDY) == 0u) {
    }
    FLASH_ACR = FLASH_ACR_LATENCY_5WS | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    while ((FLASH_ACR & 0xFu) != FLASH_ACR_LATENCY_5WS) {
    }
    /* AHB /1, APB1 /4 (45 MHz max), APB2 /2 (90 MHz max), SYSCLK = PLL. */
    RCC_CFGR = (0u << 4) | (5u << 10) | (4u << 13) | RCC_CFGR_SW_PLL;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL) {
    }
}

static void uart_init(void) {
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
    /* PA2, PA3: alternate function 7, high speed, RX pulled up so a floating line reads idle. */
    GPIOA_MODER = (GPIOA_MODER & ~((0x3u << 4) | (0x3u << 6))) | (0x2u << 4) | (0x2u << 6);
    GPIOA_OSPEEDR |= (0x3u << 4) | (0x3u << 6);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0x3u << 6)) | (0x1u << 6);
    GPIOA_AFRL = (GPIOA_AFRL & ~((0xFu << 8) | (0xFu << 12))) | (7u << 8) | (7u << 12);

    USART_CR1 = 0u;
    USART_CR2 = 0u; /* 1 stop bit */
    USART_CR3 = 0u;
    /* Oversampling by 16: BRR = USARTDIV in 12.4 fixed point = f_ck / baud, rounded. */
    USART_BRR = (UART_CLOCK_HZ + TM_UART_BAUD / 2u) / TM_UART_BAUD;
    USART_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
}

void USART2_IRQHandler(void) {
    uint32_t status = USART_SR;
    if ((status & (USART_SR_RXNE | USART_SR_ORE)) != 0u) {
        /* Reading DR after SR also clears an overrun. */
        uint8_t byte = (uint8_t)USART_DR;
        if ((status & USART_SR_RXNE) != 0u) {
            tm_rx_ring_push(&rx_ring, byte);
        }
    }
}

static int uart_tx_ready(void) { return (USART_SR & USART_SR_TXE) != 0u; }
static void uart_tx_byte(uint8_t byte) { USART_DR = byte; }

static void caches_init(void) {
    /* The F446's ART accelerator (flash prefetch and caches) is set in clock_init. */
}

#elif defined(STM32H743xx)

static void clock_init(void) {
    /* Supply from the LDO (the Nucleo's configuration); the write locks it until reset. */
    PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_SCUEN | PWR_CR3_BYPASS)) | PWR_CR3_LDOEN;
    while ((PWR_CSR1 & PWR_CSR1_ACTVOSRDY) == 0u) {
    }
    /* VOS1, then over-drive (VOS0) through SYSCFG: required for 480 MHz. */
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_MASK) | PWR_D3CR_VOS1;
    while ((PWR_D3CR & PWR_D3CR_VOSRDY) == 0u) {
    }
    RCC_APB4ENR |= RCC_APB4ENR_SYSCFGEN;
    (void)RCC_APB4ENR;
    SYSCFG_PWRCR |= SYSCFG_PWRCR_ODEN;
    while ((PWR_D3CR & PWR_D3CR_VOSRDY) == 0u) {
    }

    RCC_CR = (RCC_CR & ~RCC_CR_HSIDIV_MASK) | RCC_CR_HSION; /* HSI 64 MHz, undivided */
    while ((RCC_CR & RCC_CR_HSIRDY) == 0u) {
    }
    /* PLL1 from HSI: ref = 64 MHz / M(4) = 16 MHz (range 8-16 MHz), wide VCO =
     * 16 MHz * N(60) = 960 MHz, P = 2 -> 480 MHz, Q = 4, R = 2. */
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~((0x3Fu << 4) | 0x3u)) | (4u << 4);
    RCC_PLLCFGR = (RCC_PLLCFGR & ~(0xFu | (0x7u << 16))) | (0x3u << 2) | (0x7u << 16);
    RCC_PLL1DIVR = (60u - 1u) | ((2u - 1u) << 9) | ((4u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= RCC_CR_PLL1ON;
    while ((RCC_CR & RCC_CR_PLL1RDY) == 0u) {
    }
    /* AXI/AHB at 240 MHz in VOS0: 4 wait states, programming delay 2. */
    FLASH_ACR = FLASH_ACR_LATENCY_4WS | FLASH_ACR_WRHIGHFREQ_2;
    while ((FLASH_ACR & 0xFu) != FLASH_ACR_LATENCY_4WS) {
    }
    /* D1CPRE /1 (CPU 480), HPRE /2 (240), every APB /2 (120 MHz). */
    RCC_D1CFGR = (0x8u << 0) | (0x4u << 4) | (0x0u << 8);
    RCC_D2CFGR = (0x4u << 4) | (0x4u << 8);
    RCC_D3CFGR = (0x4u << 4);
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL1) {
    }
}

static void uart_init(void) {
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR;
    /* PD8, PD9 (AFRH slots 0 and 1): alternate function 7, high speed, RX pulled up. */
    GPIOD_MODER = (GPIOD_MODER & ~((0x3u << 16) | (0x3u << 18))) | (0x2u << 16) | (0x2u << 18);
    GPIOD_OSPEEDR |= (0x3u << 16) | (0x3u << 18);
    GPIOD_PUPDR = (GPIOD_PUPDR & ~(0x3u << 18)) | (0x1u << 18);
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 7u | (7u << 4);

    USART_CR1 = 0u;
    USART_CR2 = 0u;
    USART_CR3 = 0u;
    /* Kernel clock = pclk1 (RCC_D2CCIP2R reset value); oversampling by 16: BRR = f_ck / baud. */
    USART_BRR = (UART_CLOCK_HZ + TM_UART_BAUD / 2u) / TM_UART_BAUD;
    USART_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
}

void USART3_IRQHandler(void) {
    uint32_t status = USART_ISR;
    if ((status & USART_ISR_ORE) != 0u) {
        USART_ICR = USART_ICR_ORECF; /* an overrun otherwise keeps the interrupt pending */
    }
    if ((status & USART_ISR_RXNE) != 0u) {
        tm_rx_ring_push(&rx_ring, (uint8_t)USART_RDR);
    }
}

static int uart_tx_ready(void) { return (USART_ISR & USART_ISR_TXE) != 0u; }
static void uart_tx_byte(uint8_t byte) { USART_TDR = byte; }

static void caches_init(void) {
    /* Cortex-M7 (ARMv7-M ARM B2.2.7): invalidate, then enable. */
    barrier_dsb_isb();
    SCB_ICIALLU = 0u;
    barrier_dsb_isb();
    SCB_CCR |= SCB_CCR_IC;
    barrier_dsb_isb();

    SCB_CSSELR = 0u; /* level 1 data cache */
    barrier_dsb_isb();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    uint32_t line_shift = (ccsidr & 0x7u) + 4u;
    uint32_t way_shift = ways > 1u ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (uint32_t set = 0u; set < sets; set++) {
        for (uint32_t way = 0u; way < ways; way++) {
            SCB_DCISW = (set << line_shift) | (ways > 1u ? (way << way_shift) : 0u);
        }
    }
    barrier_dsb_isb();
    SCB_CCR |= SCB_CCR_DC;
    barrier_dsb_isb();
}

#endif

void SysTick_Handler(void) { (void)tm_port_timer_now(); }

static void timer_init(void) {
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_KEY;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    timer_high = 0u;
    timer_last_low = 0u;
    SYSTICK_LOAD = SYSTICK_PERIOD - 1u;
    SYSTICK_VAL = 0u;
    SYSTICK_CTRL = SYSTICK_CTRL_CLKSOURCE_CPU | SYSTICK_CTRL_TICKINT | SYSTICK_CTRL_ENABLE;
}

void tm_port_init(void) {
    clock_init();
    caches_init();
    tm_rx_ring_init(&rx_ring);
    uart_init();
    timer_init();
    NVIC_ISER(UART_IRQN / 32u) = 1u << (UART_IRQN % 32u);
    __asm__ volatile("cpsie i" ::: "memory");
}

const tm_port_info_t *tm_port_info(void) { return &port_info; }

size_t tm_port_uart_read(uint8_t *buf, size_t max) { return tm_rx_ring_pop(&rx_ring, buf, max); }

void tm_port_uart_write(const uint8_t *buf, size_t len) {
    for (size_t i = 0u; i < len; i++) {
        while (!uart_tx_ready()) {
        }
        uart_tx_byte(buf[i]);
    }
}

uint64_t tm_port_timer_now(void) {
    uint32_t primask = irq_save();
    uint32_t low = DWT_CYCCNT;
    if (low < timer_last_low) {
        timer_high++;
    }
    timer_last_low = low;
    uint64_t now = ((uint64_t)timer_high << 32) | low;
    irq_restore(primask);
    return now;
}

void tm_port_idle(void) {
    /* WFI wakes on a pending interrupt even with PRIMASK set, so checking with
     * interrupts masked cannot miss a byte that lands just before the WFI. */
    uint32_t primask = irq_save();
    if (tm_rx_ring_empty(&rx_ring)) {
        __asm__ volatile("dsb 0xF\n\twfi" ::: "memory");
    }
    irq_restore(primask);
}

void tm_port_reset(void) {
    barrier_dsb_isb();
    SCB_AIRCR = SCB_AIRCR_RESET;
    barrier_dsb_isb();
    for (;;) {
    }
}
