/*
 * log: the programs' log lines, to stderr with a timestamp, or to syslog
 * when a daemon has no terminal. common/ itself never logs: it returns
 * errors, and the program that handles one logs it once (STYLE.md).
 */
#ifndef ISERKIT_LOG_H
#define ISERKIT_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LVL_ERR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* Name the program in each line; log from @level up to the most severe.
 * With @use_syslog, lines go to syslog(3) instead of stderr. */
void log_init(const char *ident, enum log_level level, bool use_syslog);

/* printf-like. Safe before log_init() (logs at INFO to stderr). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool log_enabled(enum log_level level);

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                       \
	do {                                                 \
		if (log_enabled(LOG_LVL_DEBUG))              \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
