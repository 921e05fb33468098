// Boost.JSON compiled into the fuzz targets (instead of linking Debian's libboost_json, which
// is built without coverage or sanitizers), so its parser is instrumented like our code.
#include <boost/json/src.hpp>
