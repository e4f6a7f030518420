#include "bench/loadgen/hist.h"
