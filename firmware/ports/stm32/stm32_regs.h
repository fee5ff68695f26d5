/*
 * stm32_regs.h - the few STM32F446 / STM32H743 and Cortex-M registers the
 * stm32 port touches, written out from the reference manuals (RM0390 for the
 * F446, RM0433 for the H743, ARMv7-M ARM for the core) so the port builds
 * without ST's HAL or CMSIS device headers.
 *
 * Select the chip with -DSTM32F446xx or -DSTM32H743xx (the names ST's headers use).
 */
#ifndef STM32_REGS_H
#define STM32_REGS_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- Cortex-M core (ARMv7-M) ---- */
#define SCB_CPACR REG32(0xE000ED88u)  /* coprocessor access: CP10/CP11 = FPU */
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_AIRCR_RESET (0x05FA0000u | (1u << 2)) /* VECTKEY | SYSRESETREQ */
#define SCB_CCR REG32(0xE000ED14u)
#define SCB_CCR_DC (1u << 16)
#define SCB_CCR_IC (1u << 17)
#define SCB_CCSIDR REG32(0xE000ED80u)
#define SCB_CSSELR REG32(0xE000ED84u)
#define SCB_ICIALLU REG32(0xE000EF50u)
#define SCB_DCISW REG32(0xE000EF60u)

#define SYSTICK_CTRL REG32(0xE000E010u)
#define SYSTICK_LOAD REG32(0xE000E014u)
#define SYSTICK_VAL REG32(0xE000E018u)
#define SYSTICK_CTRL_ENABLE (1u << 0)
#define SYSTICK_CTRL_TICKINT (1u << 1)
#define SYSTICK_CTRL_CLKSOURCE_CPU (1u << 2)

#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))

#define DEMCR REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR REG32(0xE0001FB0u) /* lock access: the M7 ignores DWT writes until unlocked */
#define DWT_LAR_KEY 0xC5ACCE55u

#if defined(STM32F446xx)

/* ---- STM32F446 (RM0390) ---- */
#define RCC_BASE 0x40023800u
#define RCC_CR REG32(RCC_BASE + 0x00u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR REG32(RCC_BASE + 0x04u)
#define RCC_CFGR REG32(RCC_BASE + 0x08u)
#define RCC_CFGR_SW_PLL 0x2u
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLL (0x2u << 2)
#define RCC_AHB1ENR REG32(RCC_BASE + 0x30u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40u)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)

#define PWR_BASE 0x40007000u
#define PWR_CR REG32(PWR_BASE + 0x00u)
#define PWR_CR_VOS_SCALE1 (0x3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR REG32(PWR_BASE + 0x04u)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

#define FLASH_ACR REG32(0x40023C00u)
#define FLASH_ACR_LATENCY_5WS 5u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER REG32(GPIOA_BASE + 0x00u)
#define GPIOA_OSPEEDR REG32(GPIOA_BASE + 0x08u)
#define GPIOA_PUPDR REG32(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFRL REG32(GPIOA_BASE + 0x20u)

/* USART2 (PA2 TX, PA3 RX, AF7): the ST-LINK virtual COM port on Nucleo-64. */
#define USART2_BASE 0x40004400u
#define USART_SR REG32(USART2_BASE + 0x00u)
#define USART_DR REG32(USART2_BASE + 0x04u)
#define USART_BRR REG32(USART2_BASE + 0x08u)
#define USART_CR1 REG32(USART2_BASE + 0x0Cu)
#define USART_CR2 REG32(USART2_BASE + 0x10u)
#define USART_CR3 REG32(USART2_BASE + 0x14u)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)
#define USART2_IRQN 38u

#elif defined(STM32H743xx)

/* ---- STM32H743 (RM0433) ---- */
#define RCC_BASE 0x58024400u
#define RCC_CR REG32(RCC_BASE + 0x00u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSIDIV_MASK (0x3u << 3)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR REG32(RCC_BASE + 0x10u)
#define RCC_CFGR_SW_MASK 0x7u
#define RCC_CFGR_SW_PLL1 0x3u
#define RCC_CFGR_SWS_MASK (0x7u << 3)
#define RCC_CFGR_SWS_PLL1 (0x3u << 3)
#define RCC_D1CFGR REG32(RCC_BASE + 0x18u)
#define RCC_D2CFGR REG32(RCC_BASE + 0x1Cu)
#define RCC_D3CFGR REG32(RCC_BASE + 0x20u)
#define RCC_PLLCKSELR REG32(RCC_BASE + 0x28u)
#define RCC_PLLCFGR REG32(RCC_BASE + 0x2Cu)
#define RCC_PLL1DIVR REG32(RCC_BASE + 0x30u)
#define RCC_AHB4ENR REG32(RCC_BASE + 0xE0u)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR REG32(RCC_BASE + 0xE8u)
#define RCC_APB1LENR_USART3EN (1u << 18)
#define RCC_APB4ENR REG32(RCC_BASE + 0xF4u)
#define RCC_APB4ENR_SYSCFGEN (1u << 1)

#define PWR_BASE 0x58024800u
#define PWR_CSR1 REG32(PWR_BASE + 0x04u)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_CR3 REG32(PWR_BASE + 0x0Cu)
#define PWR_CR3_BYPASS (1u << 0)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SCUEN (1u << 2)
#define PWR_D3CR REG32(PWR_BASE + 0x18u)
#define PWR_D3CR_VOSRDY (1u << 13)
#define PWR_D3CR_VOS_MASK (0x3u << 14)
#define PWR_D3CR_VOS1 (0x3u << 14)

#define SYSCFG_PWRCR REG32(0x58000400u + 0x2Cu)
#define SYSCFG_PWRCR_ODEN (1u << 0) /* with VOS1: VOS0, needed above 400 MHz */

#define FLASH_ACR REG32(0x52002000u)
#define FLASH_ACR_LATENCY_4WS 4u
#define FLASH_ACR_WRHIGHFREQ_2 (0x2u << 4)

#define GPIOD_BASE 0x58020C00u
#define GPIOD_MODER REG32(GPIOD_BASE + 0x00u)
#define GPIOD_OSPEEDR REG32(GPIOD_BASE + 0x08u)
#define GPIOD_PUPDR REG32(GPIOD_BASE + 0x0Cu)
#define GPIOD_AFRH REG32(GPIOD_BASE + 0x24u)

/* USART3 (PD8 TX, PD9 RX, AF7): the ST-LINK virtual COM port on Nucleo-144. */
#define USART3_BASE 0x40004800u
#define USART_CR1 REG32(USART3_BASE + 0x00u)
#define USART_CR2 REG32(USART3_BASE + 0x04u)
#define USART_CR3 REG32(USART3_BASE + 0x08u)
#define USART_BRR REG32(USART3_BASE + 0x0Cu)
#define USART_ISR REG32(USART3_BASE + 0x1Cu)
#define USART_ICR REG32(USART3_BASE + 0x20u)
#define USART_RDR REG32(USART3_BASE + 0x24u)
#define USART_TDR REG32(USART3_BASE + 0x28u)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TXE (1u << 7)
#define USART_ICR_ORECF (1u << 3)
#define USART3_IRQN 39u

#else
#error "stm32 port: define STM32F446xx or STM32H743xx"
#endif

#endif /* STM32_REGS_H */
