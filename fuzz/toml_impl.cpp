// toml++ compiled once, instrumented, for config_fuzz: server/config.cpp and config_fuzz.cpp see
// only its declarations (TOML_HEADER_ONLY=0), so its parser is not compiled twice.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
