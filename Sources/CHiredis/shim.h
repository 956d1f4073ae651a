#ifndef TOKENGATE_CHIREDIS_SHIM_H
#define TOKENGATE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
