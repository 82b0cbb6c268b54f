/*
 * pt_log_writer.h: the access log's writer thread and its bounded queue.
 *
 * The worker copies whole lines into a ring of PT_LOG_CHUNKS chunks of
 * `buffer` bytes; one thread per worker writes sealed chunks with
 * writev(2), so a slow or full disk blocks that thread, never the event
 * loop. When the ring is full a line is dropped and counted.
 */

#ifndef PT_LOG_WRITER_H
#define PT_LOG_WRITER_H

#include "pt_core.h"


#define PT_LOG_CHUNKS  8


/* Start the thread (in the worker, after fork), writing to a duplicate
 * of fd that the thread owns from then on; path is what it reopens. */
int pt_log_writer_start(int fd, const char *path, size_t chunk);
/* Queue one line (with its "\n"); dropped and counted when full. */
void pt_log_writer_append(const char *line, size_t len);
/* Once a second: hand over what is buffered, report drops and errors. */
void pt_log_writer_tick(void);
/* USR1: lines queued so far go to the current file, later ones to the
 * file opened by the thread at that point of the queue. */
void pt_log_writer_reopen(void);
/* Worker exit: write what is queued, join with a bounded wait. */
void pt_log_writer_stop(void);
/* 1 once started in this process. */
int pt_log_writer_running(void);


#endif /* PT_LOG_WRITER_H */
