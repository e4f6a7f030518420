#include "agents/supervisor/supervisor.h"
