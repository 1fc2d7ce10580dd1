/*
 * lun: the state of one logical unit, private to target/lun.c and the SCSI
 * layer (target/scsi*.c). The session layer sees only the functions of
 * scsi.h.
 *
 * Everything runs on the scheduler thread that owns the LUN.
 */
#ifndef ISERKIT_LUN_H
#define ISERKIT_LUN_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "scsi.h"

#define LUN_UA_MAX 8

/* What the LUN remembers of one I_T nexus (SAM-5 §5.14). */
struct lun_nexus {
	struct lun_nexus *next;
	uint64_t id;
	char initiator[224];
	uint8_t isid[6];
	uint16_t ua[LUN_UA_MAX]; /* pending unit attentions, oldest first */
	unsigned int nua;
};

/* A persistent reservation registration (SPC-4 §5.13.7), one per I_T nexus
 * as named by its TransportID: the initiator's iSCSI name and ISID. */
struct lun_reg {
	struct lun_reg *next;
	uint64_t key;
	char initiator[224];
	uint8_t isid[6];
};

struct lun {
	unsigned int number;
	int fd;
	bool blockdev;
	bool read_only;
	uint64_t blocks;
	unsigned int block_size;
	struct ioq *q;
	unsigned int ioq_class; /* ioq_fd_class() of fd */
	char serial[CONFIG_SERIAL_MAX + 1];
	uint64_t naa;

	/* Mode parameters (SPC-4 §7.5, SBC-3 §6.4), shared by all nexuses. */
	bool wce;     /* Caching page: write back cache enabled */
	bool d_sense; /* Control page: descriptor format sense */
	bool swp;     /* Control page: software write protect */

	struct lun_nexus *nexuses;

	/* SPC-2 RESERVE(6)/(10). */
	bool res2;
	uint64_t res2_nexus;

	/* SPC-4 persistent reservations. */
	struct lun_reg *regs;
	uint32_t pr_generation;
	bool pr_held;
	uint8_t pr_type;
	struct lun_reg *pr_holder; /* NULL for the all-registrants types */

	/* Commands holding a range lock, and those waiting for one. */
	struct scsi_cmd *locked;
	struct scsi_cmd *wait_head, *wait_tail;
};

/*
 * The state of nexus @n on @l, created on first use with a POWER ON, RESET,
 * OR BUS DEVICE RESET OCCURRED unit attention pending (SAM-5 §6.3.2).
 * Returns NULL only when out of memory.
 */
struct lun_nexus *lun_nexus_get(struct lun *l, const struct scsi_nexus *n);

/* Queue @code (a SENSE_* value) on @ln; a full queue drops the newest. */
void lun_ua_add(struct lun_nexus *ln, uint16_t code);

/* Take the oldest pending unit attention of @ln. Returns false if none. */
bool lun_ua_pop(struct lun_nexus *ln, uint16_t *code);

/* The medium is write protected: read-only LUN or the SWP bit. */
bool lun_write_protected(const struct lun *l);

/* Queue @code for every nexus of @l named like registration @r. */
void lun_ua_reg(struct lun *l, const struct lun_reg *r, uint16_t code);

/* Whether registration @r belongs to nexus @n. */
bool lun_reg_is(const struct lun_reg *r, const struct scsi_nexus *n);

/* The registration of nexus @n, or NULL. */
struct lun_reg *lun_reg_find(const struct lun *l, const struct scsi_nexus *n);

#endif
