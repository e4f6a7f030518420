#include "tests/runner.h"
