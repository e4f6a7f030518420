#include "bench/sim/sim.h"
#include "agents/voice/voice.h"
#include "tests/runner.h"
