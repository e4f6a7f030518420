#include "net/net.h"
#include "wsframe.h"
#include "build/release/gen/generated.h"
