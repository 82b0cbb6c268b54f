/*
 * pt_status.h: what the status module's files share.
 */

#ifndef PT_STATUS_H
#define PT_STATUS_H

#include "pt_http.h"


/* GET / on the admin listener: the dashboard (pt_status_dashboard.c). */
int pt_status_dashboard_init(pt_conf_t *cf);


#endif /* PT_STATUS_H */
