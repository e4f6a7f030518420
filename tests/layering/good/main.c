#include "agents/agents.h"
#include "cli/cli.h"
#include <stdio.h>
