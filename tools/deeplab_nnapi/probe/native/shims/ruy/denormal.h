// A stand-in for ruy's denormal.h (ruy is not packaged by Debian). The interpreter only uses
// ScopedSuppressDenormals around Invoke(), which the probe never calls.
#ifndef DEEPLAB_NNAPI_PROBE_SHIMS_RUY_DENORMAL_H_
#define DEEPLAB_NNAPI_PROBE_SHIMS_RUY_DENORMAL_H_

namespace ruy {
class ScopedSuppressDenormals {
 public:
  ScopedSuppressDenormals() {}
};
}  // namespace ruy

#endif  // DEEPLAB_NNAPI_PROBE_SHIMS_RUY_DENORMAL_H_
