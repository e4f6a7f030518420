#include "cli/cli.h"
#include "net/net.h"
