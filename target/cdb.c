/*
 * cdb: table-driven CDB validation and decoding. Layouts are those of
 * SBC-3 r36 / SBC-4 (block commands) and SPC-4 (primary commands); where the
 * two differ the comment on the entry says which one is followed.
 */
#include <errno.h>
#include <string.h>

#include "cdb.h"

/* Every operation code here with service actions has them in byte 1, bits 4-0. */
#define SA_BYTE 1
#define SA_MASK 0x1f
#define SA_BIT 4

/* Usage-map shorthands. */
#define X4 0xff, 0xff, 0xff, 0xff
#define X8 X4, X4
#define GRP 0x3f     /* GROUP NUMBER, bits 5-0 (SBC-4) */
#define PROTECT 0xe0 /* RDPROTECT/WRPROTECT/VRPROTECT/ORPROTECT, bits 7-5 */
#define FUA_NV 0x02  /* obsolete in SBC-4, sent by libiscsi: accepted, ignored */
#define SYNC_NV 0x04 /* obsolete in SBC-4, sent by libiscsi: accepted, ignored */

enum field_id {
	F_END, /* terminates cdb_entry.fields */
	F_LBA,
	F_LENGTH,
	F_ALLOC,
	F_PARAM,
	F_GROUP,
	F_BYTCHK,
	F_PAGE,
	F_SUBPAGE,
	F_PC,
	F_POWER,
	F_POWER_MOD,
	F_PREVENT,
	F_SELECT_REPORT,
	F_OPTIONS,
	F_REQ_OPCODE,
	F_REQ_SA,
	F_SCOPE,
	F_TYPE,
	F_DPO,
	F_FUA,
	F_IMMED,
	F_UNMAP,
	F_ANCHOR,
	F_NDOB,
	F_EVPD,
	F_DBD,
	F_LLBAA,
	F_PF,
	F_SP,
	F_DESC,
	F_START,
	F_LOEJ,
	F_NO_FLUSH,
	F_PMI,
	F_RCTD,
	F_REPD,
};

/* A field: @size big-endian bytes from @byte, the first one masked with @mask. */
struct cdb_field {
	uint8_t id;
	uint8_t byte;
	uint8_t size;
	uint8_t mask;
};

#define BITS(f, b, m)                                            \
	{                                                        \
		.id = F_##f, .byte = (b), .size = 1, .mask = (m) \
	}
#define BE(f, b, n)                                                 \
	{                                                           \
		.id = F_##f, .byte = (b), .size = (n), .mask = 0xff \
	}

#define MAX_FIELDS 8

/* cdb_entry.flags */
#define E_LEN0_256 0x1	     /* READ(6)/WRITE(6): TRANSFER LENGTH 0 means 256 (SBC-3) */
#define E_DATA_IF_BYTCHK 0x2 /* VERIFY: data-out only if BYTCHK is not zero */

struct cdb_entry {
	struct cdb_desc d;
	/* Not used (zero in d.usage) but accepted: the standard says ignore. */
	uint8_t ignored[CDB_MAX_LEN];
	/* Unsupported multi-bit fields: an error points at their left-most bit. */
	uint8_t wide[CDB_MAX_LEN];
	uint8_t flags;
	struct cdb_field fields[MAX_FIELDS];
};

/* Field sets shared by the READ/WRITE/VERIFY families. */
#define DPO_FUA BITS(DPO, 1, 0x10), BITS(FUA, 1, 0x08)
#define DPO_BYTCHK BITS(DPO, 1, 0x10), BITS(BYTCHK, 1, 0x06)
#define RW6 {.id = F_LBA, .byte = 1, .size = 3, .mask = 0x1f}, BE(LENGTH, 4, 1)
#define RW10 BE(LBA, 2, 4), BITS(GROUP, 6, GRP), BE(LENGTH, 7, 2)
#define RW12 BE(LBA, 2, 4), BE(LENGTH, 6, 4), BITS(GROUP, 10, GRP)
#define RW16 BE(LBA, 2, 8), BE(LENGTH, 10, 4), BITS(GROUP, 14, GRP)

/* SPC-4 PERSISTENT RESERVE IN: one entry per service action. */
#define PR_IN(sa_, name_)                                                       \
	{                                                                       \
		.d = {.name = "PERSISTENT RESERVE IN (" name_ ")",              \
		      .opcode = 0x5e,                                           \
		      .has_sa = true,                                           \
		      .sa = (sa_),                                              \
		      .len = 10,                                                \
		      .dir = CDB_DIR_IN,                                        \
		      .usage = {0x5e, (sa_), 0, 0, 0, 0, 0, 0xff, 0xff, 0x00}}, \
		.fields = {BE(ALLOC, 7, 2)},                                    \
	}

/* SPC-4 PERSISTENT RESERVE OUT with SCOPE and TYPE used. */
#define PR_OUT_TYPED(sa_, name_)                                                        \
	{                                                                               \
		.d = {.name = "PERSISTENT RESERVE OUT (" name_ ")",                     \
		      .opcode = 0x5f,                                                   \
		      .has_sa = true,                                                   \
		      .sa = (sa_),                                                      \
		      .len = 10,                                                        \
		      .dir = CDB_DIR_OUT,                                               \
		      .usage = {0x5f, (sa_), 0xff, 0, 0, X4, 0x00}},                    \
		.fields = {BITS(SCOPE, 2, 0xf0), BITS(TYPE, 2, 0x0f), BE(PARAM, 5, 4)}, \
	}

/* SPC-4 PERSISTENT RESERVE OUT whose SCOPE and TYPE "shall be ignored". */
#define PR_OUT_UNTYPED(sa_, name_)                                    \
	{                                                             \
		.d = {.name = "PERSISTENT RESERVE OUT (" name_ ")",   \
		      .opcode = 0x5f,                                 \
		      .has_sa = true,                                 \
		      .sa = (sa_),                                    \
		      .len = 10,                                      \
		      .dir = CDB_DIR_OUT,                             \
		      .usage = {0x5f, (sa_), 0x00, 0, 0, X4, 0x00}},  \
		.ignored = {[2] = 0xff}, .fields = {BE(PARAM, 5, 4)}, \
	}

/* SPC-2 RESERVE(10)/RELEASE(10): third-party reservations are not supported. */
#define RESERVE10(op_, name_)                                                \
	{                                                                    \
		.d = {.name = name_,                                         \
		      .opcode = (op_),                                       \
		      .len = 10,                                             \
		      .dir = CDB_DIR_NONE,                                   \
		      .usage = {(op_), 0, 0, 0, 0, 0, 0, 0, 0, 0x00}},       \
		.ignored = {[1] = 0x02, [3] = 0xff, [7] = 0xff, [8] = 0xff}, \
	}

/* Sorted by (opcode, service action): cdb_lookup() searches it by halves. */
static const struct cdb_entry table[] = {
	/* SPC-4 TEST UNIT READY */
	{
		.d = {.name = "TEST UNIT READY",
		      .opcode = 0x00,
		      .len = 6,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x00, 0, 0, 0, 0, 0x00}},
	},
	/* SPC-4 REQUEST SENSE */
	{
		.d = {.name = "REQUEST SENSE",
		      .opcode = 0x03,
		      .len = 6,
		      .dir = CDB_DIR_IN,
		      .usage = {0x03, 0x01, 0, 0, 0xff, 0x00}},
		.fields = {BITS(DESC, 1, 0x01), BE(ALLOC, 4, 1)},
	},
	/* SBC-3 READ(6) */
	{
		.d = {.name = "READ(6)",
		      .opcode = 0x08,
		      .len = 6,
		      .dir = CDB_DIR_IN,
		      .usage = {0x08, 0x1f, 0xff, 0xff, 0xff, 0x00}},
		.flags = E_LEN0_256,
		.fields = {RW6},
	},
	/* SBC-3 WRITE(6) */
	{
		.d = {.name = "WRITE(6)",
		      .opcode = 0x0a,
		      .len = 6,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x0a, 0x1f, 0xff, 0xff, 0xff, 0x00}},
		.flags = E_LEN0_256,
		.fields = {RW6},
	},
	/* SPC-4 INQUIRY: bit 1 of byte 1 is the obsolete CMDDT, rejected. */
	{
		.d = {.name = "INQUIRY",
		      .opcode = 0x12,
		      .len = 6,
		      .dir = CDB_DIR_IN,
		      .usage = {0x12, 0x01, 0xff, 0xff, 0xff, 0x00}},
		.fields = {BITS(EVPD, 1, 0x01), BE(PAGE, 2, 1), BE(ALLOC, 3, 2)},
	},
	/* SPC-4 MODE SELECT(6) */
	{
		.d = {.name = "MODE SELECT(6)",
		      .opcode = 0x15,
		      .len = 6,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x15, 0x11, 0, 0, 0xff, 0x00}},
		.fields = {BITS(PF, 1, 0x10), BITS(SP, 1, 0x01), BE(PARAM, 4, 1)},
	},
	/* SPC-2 RESERVE(6): bytes 1-4 reserved or obsolete (no extents). */
	{
		.d = {.name = "RESERVE(6)",
		      .opcode = 0x16,
		      .len = 6,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x16, 0, 0, 0, 0, 0x00}},
	},
	/* SPC-2 RELEASE(6) */
	{
		.d = {.name = "RELEASE(6)",
		      .opcode = 0x17,
		      .len = 6,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x17, 0, 0, 0, 0, 0x00}},
	},
	/* SPC-4 MODE SENSE(6) */
	{
		.d = {.name = "MODE SENSE(6)",
		      .opcode = 0x1a,
		      .len = 6,
		      .dir = CDB_DIR_IN,
		      .usage = {0x1a, 0x08, 0xff, 0xff, 0xff, 0x00}},
		.fields = {BITS(DBD, 1, 0x08), BITS(PC, 2, 0xc0), BITS(PAGE, 2, 0x3f),
			   BE(SUBPAGE, 3, 1), BE(ALLOC, 4, 1)},
	},
	/* SBC-3 START STOP UNIT */
	{
		.d = {.name = "START STOP UNIT",
		      .opcode = 0x1b,
		      .len = 6,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x1b, 0x01, 0, 0x0f, 0xf7, 0x00}},
		.fields = {BITS(IMMED, 1, 0x01), BITS(POWER_MOD, 3, 0x0f), BITS(POWER, 4, 0xf0),
			   BITS(NO_FLUSH, 4, 0x04), BITS(LOEJ, 4, 0x02), BITS(START, 4, 0x01)},
	},
	/* SBC-3 PREVENT ALLOW MEDIUM REMOVAL */
	{
		.d = {.name = "PREVENT ALLOW MEDIUM REMOVAL",
		      .opcode = 0x1e,
		      .len = 6,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x1e, 0, 0, 0, 0x03, 0x00}},
		.fields = {BITS(PREVENT, 4, 0x03)},
	},
	/* SBC-3 READ CAPACITY(10): LBA and PMI as in SBC-3 (obsolete in SBC-4). */
	{
		.d = {.name = "READ CAPACITY(10)",
		      .opcode = 0x25,
		      .len = 10,
		      .dir = CDB_DIR_IN,
		      .usage = {0x25, 0x00, X4, 0, 0, 0x01, 0x00}},
		.fields = {BE(LBA, 2, 4), BITS(PMI, 8, 0x01)},
	},
	/* SBC-3 READ(10): RARC and the obsolete bit 0 are rejected. */
	{
		.d = {.name = "READ(10)",
		      .opcode = 0x28,
		      .len = 10,
		      .dir = CDB_DIR_IN,
		      .usage = {0x28, 0x18, X4, GRP, 0xff, 0xff, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, RW10},
	},
	/* SBC-3 WRITE(10) */
	{
		.d = {.name = "WRITE(10)",
		      .opcode = 0x2a,
		      .len = 10,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x2a, 0x18, X4, GRP, 0xff, 0xff, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, RW10},
	},
	/* SBC-3 r36 WRITE AND VERIFY(10): BYTCHK is 2 bits. */
	{
		.d = {.name = "WRITE AND VERIFY(10)",
		      .opcode = 0x2e,
		      .len = 10,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x2e, 0x16, X4, GRP, 0xff, 0xff, 0x00}},
		.wide = {[1] = PROTECT},
		.fields = {DPO_BYTCHK, RW10},
	},
	/* SBC-3 r36 VERIFY(10) */
	{
		.d = {.name = "VERIFY(10)",
		      .opcode = 0x2f,
		      .len = 10,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x2f, 0x16, X4, GRP, 0xff, 0xff, 0x00}},
		.wide = {[1] = PROTECT},
		.flags = E_DATA_IF_BYTCHK,
		.fields = {DPO_BYTCHK, RW10},
	},
	/* SBC-3 PRE-FETCH(10) */
	{
		.d = {.name = "PRE-FETCH(10)",
		      .opcode = 0x34,
		      .len = 10,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x34, 0x02, X4, GRP, 0xff, 0xff, 0x00}},
		.fields = {BITS(IMMED, 1, 0x02), RW10},
	},
	/* SBC-3 SYNCHRONIZE CACHE(10) */
	{
		.d = {.name = "SYNCHRONIZE CACHE(10)",
		      .opcode = 0x35,
		      .len = 10,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x35, 0x02, X4, GRP, 0xff, 0xff, 0x00}},
		.ignored = {[1] = SYNC_NV},
		.fields = {BITS(IMMED, 1, 0x02), RW10},
	},
	/* SBC-3 WRITE SAME(10): the obsolete PBDATA, LBDATA, RELADR are rejected. */
	{
		.d = {.name = "WRITE SAME(10)",
		      .opcode = 0x41,
		      .len = 10,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x41, 0x18, X4, GRP, 0xff, 0xff, 0x00}},
		.wide = {[1] = PROTECT},
		.fields = {BITS(ANCHOR, 1, 0x10), BITS(UNMAP, 1, 0x08), RW10},
	},
	/* SBC-3 UNMAP */
	{
		.d = {.name = "UNMAP",
		      .opcode = 0x42,
		      .len = 10,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x42, 0x01, 0, 0, 0, 0, GRP, 0xff, 0xff, 0x00}},
		.fields = {BITS(ANCHOR, 1, 0x01), BITS(GROUP, 6, GRP), BE(PARAM, 7, 2)},
	},
	/* SPC-4 MODE SELECT(10) */
	{
		.d = {.name = "MODE SELECT(10)",
		      .opcode = 0x55,
		      .len = 10,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x00}},
		.fields = {BITS(PF, 1, 0x10), BITS(SP, 1, 0x01), BE(PARAM, 7, 2)},
	},
	RESERVE10(0x56, "RESERVE(10)"),
	RESERVE10(0x57, "RELEASE(10)"),
	/* SPC-4 MODE SENSE(10) */
	{
		.d = {.name = "MODE SENSE(10)",
		      .opcode = 0x5a,
		      .len = 10,
		      .dir = CDB_DIR_IN,
		      .usage = {0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x00}},
		.fields = {BITS(LLBAA, 1, 0x10), BITS(DBD, 1, 0x08), BITS(PC, 2, 0xc0),
			   BITS(PAGE, 2, 0x3f), BE(SUBPAGE, 3, 1), BE(ALLOC, 7, 2)},
	},
	PR_IN(0x00, "READ KEYS"),
	PR_IN(0x01, "READ RESERVATION"),
	PR_IN(0x02, "REPORT CAPABILITIES"),
	PR_IN(0x03, "READ FULL STATUS"),
	PR_OUT_UNTYPED(0x00, "REGISTER"),
	PR_OUT_TYPED(0x01, "RESERVE"),
	PR_OUT_TYPED(0x02, "RELEASE"),
	PR_OUT_UNTYPED(0x03, "CLEAR"),
	PR_OUT_TYPED(0x04, "PREEMPT"),
	PR_OUT_TYPED(0x05, "PREEMPT AND ABORT"),
	PR_OUT_UNTYPED(0x06, "REGISTER AND IGNORE EXISTING KEY"),
	PR_OUT_TYPED(0x07, "REGISTER AND MOVE"),
	/* SBC-3 READ(16): byte 1 bit 0 and byte 14 bits 7-6 are DLD in SBC-4, rejected. */
	{
		.d = {.name = "READ(16)",
		      .opcode = 0x88,
		      .len = 16,
		      .dir = CDB_DIR_IN,
		      .usage = {0x88, 0x18, X8, X4, GRP, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, RW16},
	},
	/* SBC-3 COMPARE AND WRITE */
	{
		.d = {.name = "COMPARE AND WRITE",
		      .opcode = 0x89,
		      .len = 16,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x89, 0x18, X8, 0, 0, 0, 0xff, GRP, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, BE(LBA, 2, 8), BE(LENGTH, 13, 1), BITS(GROUP, 14, GRP)},
	},
	/* SBC-3 WRITE(16) */
	{
		.d = {.name = "WRITE(16)",
		      .opcode = 0x8a,
		      .len = 16,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x8a, 0x18, X8, X4, GRP, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, RW16},
	},
	/* SBC-3 ORWRITE(16) */
	{
		.d = {.name = "ORWRITE(16)",
		      .opcode = 0x8b,
		      .len = 16,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x8b, 0x18, X8, X4, GRP, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, RW16},
	},
	/* SBC-3 r36 WRITE AND VERIFY(16) */
	{
		.d = {.name = "WRITE AND VERIFY(16)",
		      .opcode = 0x8e,
		      .len = 16,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x8e, 0x16, X8, X4, GRP, 0x00}},
		.wide = {[1] = PROTECT},
		.fields = {DPO_BYTCHK, RW16},
	},
	/* SBC-3 r36 VERIFY(16) */
	{
		.d = {.name = "VERIFY(16)",
		      .opcode = 0x8f,
		      .len = 16,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x8f, 0x16, X8, X4, GRP, 0x00}},
		.wide = {[1] = PROTECT},
		.flags = E_DATA_IF_BYTCHK,
		.fields = {DPO_BYTCHK, RW16},
	},
	/* SBC-3 PRE-FETCH(16) */
	{
		.d = {.name = "PRE-FETCH(16)",
		      .opcode = 0x90,
		      .len = 16,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x90, 0x02, X8, X4, GRP, 0x00}},
		.fields = {BITS(IMMED, 1, 0x02), RW16},
	},
	/* SBC-3 SYNCHRONIZE CACHE(16) */
	{
		.d = {.name = "SYNCHRONIZE CACHE(16)",
		      .opcode = 0x91,
		      .len = 16,
		      .dir = CDB_DIR_NONE,
		      .usage = {0x91, 0x02, X8, X4, GRP, 0x00}},
		.ignored = {[1] = SYNC_NV},
		.fields = {BITS(IMMED, 1, 0x02), RW16},
	},
	/* SBC-3 WRITE SAME(16) */
	{
		.d = {.name = "WRITE SAME(16)",
		      .opcode = 0x93,
		      .len = 16,
		      .dir = CDB_DIR_OUT,
		      .usage = {0x93, 0x19, X8, X4, GRP, 0x00}},
		.wide = {[1] = PROTECT},
		.fields = {BITS(ANCHOR, 1, 0x10), BITS(UNMAP, 1, 0x08), BITS(NDOB, 1, 0x01), RW16},
	},
	/* SBC-3 READ CAPACITY(16), SERVICE ACTION IN(16) */
	{
		.d = {.name = "READ CAPACITY(16)",
		      .opcode = 0x9e,
		      .has_sa = true,
		      .sa = 0x10,
		      .len = 16,
		      .dir = CDB_DIR_IN,
		      .usage = {0x9e, 0x10, X8, X4, 0x01, 0x00}},
		.fields = {BE(LBA, 2, 8), BE(ALLOC, 10, 4), BITS(PMI, 14, 0x01)},
	},
	/* SBC-3 GET LBA STATUS: byte 14 is reserved (REPORT TYPE in SBC-4). */
	{
		.d = {.name = "GET LBA STATUS",
		      .opcode = 0x9e,
		      .has_sa = true,
		      .sa = 0x12,
		      .len = 16,
		      .dir = CDB_DIR_IN,
		      .usage = {0x9e, 0x12, X8, X4, 0x00, 0x00}},
		.fields = {BE(LBA, 2, 8), BE(ALLOC, 10, 4)},
	},
	/* SPC-4 REPORT LUNS */
	{
		.d = {.name = "REPORT LUNS",
		      .opcode = 0xa0,
		      .len = 12,
		      .dir = CDB_DIR_IN,
		      .usage = {0xa0, 0, 0xff, 0, 0, 0, X4, 0, 0x00}},
		.fields = {BE(SELECT_REPORT, 2, 1), BE(ALLOC, 6, 4)},
	},
	/* SPC-4 §6.35 REPORT SUPPORTED OPERATION CODES, MAINTENANCE IN */
	{
		.d = {.name = "REPORT SUPPORTED OPERATION CODES",
		      .opcode = 0xa3,
		      .has_sa = true,
		      .sa = 0x0c,
		      .len = 12,
		      .dir = CDB_DIR_IN,
		      .usage = {0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, X4, 0, 0x00}},
		.fields = {BITS(RCTD, 2, 0x80), BITS(OPTIONS, 2, 0x07), BE(REQ_OPCODE, 3, 1),
			   BE(REQ_SA, 4, 2), BE(ALLOC, 6, 4)},
	},
	/* SPC-4 REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, MAINTENANCE IN */
	{
		.d = {.name = "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
		      .opcode = 0xa3,
		      .has_sa = true,
		      .sa = 0x0d,
		      .len = 12,
		      .dir = CDB_DIR_IN,
		      .usage = {0xa3, 0x0d, 0x80, 0, 0, 0, X4, 0, 0x00}},
		.fields = {BITS(REPD, 2, 0x80), BE(ALLOC, 6, 4)},
	},
	/* SBC-3 READ(12): byte 10 bit 7 is restricted for MMC, rejected. */
	{
		.d = {.name = "READ(12)",
		      .opcode = 0xa8,
		      .len = 12,
		      .dir = CDB_DIR_IN,
		      .usage = {0xa8, 0x18, X4, X4, GRP, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, RW12},
	},
	/* SBC-3 WRITE(12) */
	{
		.d = {.name = "WRITE(12)",
		      .opcode = 0xaa,
		      .len = 12,
		      .dir = CDB_DIR_OUT,
		      .usage = {0xaa, 0x18, X4, X4, GRP, 0x00}},
		.ignored = {[1] = FUA_NV},
		.wide = {[1] = PROTECT},
		.fields = {DPO_FUA, RW12},
	},
	/* SBC-3 r36 WRITE AND VERIFY(12) */
	{
		.d = {.name = "WRITE AND VERIFY(12)",
		      .opcode = 0xae,
		      .len = 12,
		      .dir = CDB_DIR_OUT,
		      .usage = {0xae, 0x16, X4, X4, GRP, 0x00}},
		.wide = {[1] = PROTECT},
		.fields = {DPO_BYTCHK, RW12},
	},
	/* SBC-3 r36 VERIFY(12) */
	{
		.d = {.name = "VERIFY(12)",
		      .opcode = 0xaf,
		      .len = 12,
		      .dir = CDB_DIR_OUT,
		      .usage = {0xaf, 0x16, X4, X4, GRP, 0x00}},
		.wide = {[1] = PROTECT},
		.flags = E_DATA_IF_BYTCHK,
		.fields = {DPO_BYTCHK, RW12},
	},
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

static uint32_t entry_key(const struct cdb_entry *e)
{
	return (uint32_t)e->d.opcode << 16 | e->d.sa;
}

/* The first entry whose key is at least @key, or NULL. */
static const struct cdb_entry *lower_bound(uint32_t key)
{
	size_t lo = 0, hi = TABLE_LEN;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (entry_key(&table[mid]) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < TABLE_LEN ? &table[lo] : NULL;
}

/* The first entry of @opcode (its lowest service action), or NULL. */
static const struct cdb_entry *opcode_entry(uint8_t opcode)
{
	const struct cdb_entry *e = lower_bound((uint32_t)opcode << 16);

	return e && e->d.opcode == opcode ? e : NULL;
}

static const struct cdb_entry *sa_entry(uint8_t opcode, uint16_t sa)
{
	const struct cdb_entry *e = lower_bound((uint32_t)opcode << 16 | sa);

	return e && e->d.opcode == opcode && e->d.sa == sa ? e : NULL;
}

const struct cdb_desc *cdb_lookup(uint8_t opcode, uint16_t sa)
{
	const struct cdb_entry *e = opcode_entry(opcode);

	if (e && e->d.has_sa)
		e = sa_entry(opcode, sa);
	return e ? &e->d : NULL;
}

bool cdb_has_sa(uint8_t opcode)
{
	const struct cdb_entry *e = opcode_entry(opcode);

	return e && e->d.has_sa;
}

const struct cdb_desc *cdb_next(const struct cdb_desc *prev)
{
	const struct cdb_entry *e;

	if (!prev)
		return &table[0].d;
	e = (const struct cdb_entry *)((const char *)prev - offsetof(struct cdb_entry, d));
	return e + 1 < table + TABLE_LEN ? &e[1].d : NULL;
}

static int field_error(struct cdb *out, uint16_t byte, uint8_t bit)
{
	out->err_byte = byte;
	out->err_bit = bit;
	return -EINVAL;
}

/*
 * The bit to report among @bad: the highest one, or, inside an unsupported
 * multi-bit field (@wide), that field's left-most bit (SPC-4 §4.5.2.4.2).
 */
static uint8_t error_bit(uint8_t bad, uint8_t wide)
{
	uint8_t bit = 7;

	while (!(bad & 1u << bit))
		bit--;
	if (wide & 1u << bit)
		while (bit < 7 && wide & 1u << (bit + 1))
			bit++;
	return bit;
}

/* Reject any bit outside the usage map; byte 0 is the operation code. */
static int check_usage(const struct cdb_entry *e, const uint8_t *buf, struct cdb *out)
{
	for (uint8_t i = 1; i < e->d.len; i++) {
		uint8_t allowed = e->d.usage[i] | e->ignored[i];
		uint8_t bad;

		/* The usage map holds the service action code itself there. */
		if (e->d.has_sa && i == SA_BYTE)
			allowed |= SA_MASK;
		bad = buf[i] & ~allowed;
		if (bad)
			return field_error(out, i, error_bit(bad, e->wide[i]));
	}
	return 0;
}

static uint64_t field_value(const uint8_t *buf, const struct cdb_field *f)
{
	uint64_t v = (buf[f->byte] & f->mask) >> __builtin_ctz(f->mask);

	for (uint8_t i = 1; i < f->size; i++)
		v = v << 8 | buf[f->byte + i];
	return v;
}

/* A flat dispatcher: one line per field of struct cdb. */
static void store(struct cdb *c, uint8_t id, uint64_t v)
{
	switch (id) {
	case F_LBA:
		c->lba = v;
		break;
	case F_LENGTH:
		c->length = v;
		break;
	case F_ALLOC:
		c->alloc_len = v;
		break;
	case F_PARAM:
		c->param_len = v;
		break;
	case F_GROUP:
		c->group = v;
		break;
	case F_BYTCHK:
		c->bytchk = v;
		break;
	case F_PAGE:
		c->page_code = v;
		break;
	case F_SUBPAGE:
		c->subpage = v;
		break;
	case F_PC:
		c->pc = v;
		break;
	case F_POWER:
		c->power_cond = v;
		break;
	case F_POWER_MOD:
		c->power_mod = v;
		break;
	case F_PREVENT:
		c->prevent = v;
		break;
	case F_SELECT_REPORT:
		c->select_report = v;
		break;
	case F_OPTIONS:
		c->options = v;
		break;
	case F_REQ_OPCODE:
		c->req_opcode = v;
		break;
	case F_REQ_SA:
		c->req_sa = v;
		break;
	case F_SCOPE:
		c->scope = v;
		break;
	case F_TYPE:
		c->type = v;
		break;
	case F_DPO:
		c->dpo = v;
		break;
	case F_FUA:
		c->fua = v;
		break;
	case F_IMMED:
		c->immed = v;
		break;
	case F_UNMAP:
		c->unmap = v;
		break;
	case F_ANCHOR:
		c->anchor = v;
		break;
	case F_NDOB:
		c->ndob = v;
		break;
	case F_EVPD:
		c->evpd = v;
		break;
	case F_DBD:
		c->dbd = v;
		break;
	case F_LLBAA:
		c->llbaa = v;
		break;
	case F_PF:
		c->pf = v;
		break;
	case F_SP:
		c->sp = v;
		break;
	case F_DESC:
		c->desc_sense = v;
		break;
	case F_START:
		c->start = v;
		break;
	case F_LOEJ:
		c->loej = v;
		break;
	case F_NO_FLUSH:
		c->no_flush = v;
		break;
	case F_PMI:
		c->pmi = v;
		break;
	case F_RCTD:
		c->rctd = v;
		break;
	case F_REPD:
		c->repd = v;
		break;
	}
}

static void extract(const struct cdb_entry *e, const uint8_t *buf, struct cdb *out)
{
	for (const struct cdb_field *f = e->fields; f < e->fields + MAX_FIELDS; f++) {
		if (f->id == F_END)
			break;
		store(out, f->id, field_value(buf, f));
	}
	if (e->flags & E_LEN0_256 && out->length == 0)
		out->length = 256;
	out->dir = e->d.dir;
	if ((e->flags & E_DATA_IF_BYTCHK && out->bytchk == 0) || out->ndob)
		out->dir = CDB_DIR_NONE;
}

int cdb_decode(const uint8_t *buf, size_t len, struct cdb *out)
{
	const struct cdb_entry *e;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len < 1)
		return -EMSGSIZE;
	out->opcode = buf[0];
	e = opcode_entry(buf[0]);
	if (!e)
		return -EOPNOTSUPP;
	if (e->d.has_sa) {
		if (len <= SA_BYTE)
			return -EMSGSIZE;
		out->sa = buf[SA_BYTE] & SA_MASK;
		e = sa_entry(buf[0], out->sa);
		/* A reserved code in a field other than OPERATION CODE (SPC-4). */
		if (!e)
			return field_error(out, SA_BYTE, SA_BIT);
	}
	if (len < e->d.len)
		return -EMSGSIZE;
	ret = check_usage(e, buf, out);
	if (ret)
		return ret;
	out->desc = &e->d;
	extract(e, buf, out);
	return 0;
}

struct sense cdb_error_sense(int err, const struct cdb *c)
{
	switch (err) {
	case 0:
		return (struct sense){.key = SENSE_KEY_NO_SENSE};
	case -EOPNOTSUPP:
		return sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_COMMAND_OPCODE);
	case -EINVAL:
		return sense_invalid_cdb_field(c->err_byte, c->err_bit);
	case -EMSGSIZE:
		return sense_make(SENSE_KEY_ILLEGAL_REQUEST, SENSE_INVALID_FIELD_IN_CDB);
	default:
		return sense_make(SENSE_KEY_HARDWARE_ERROR, SENSE_INTERNAL_TARGET_FAILURE);
	}
}
