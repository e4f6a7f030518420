#include "net/net.h"
#include "bench/sim/sim.h"
