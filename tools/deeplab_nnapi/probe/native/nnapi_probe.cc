// nnapi_probe: apply TFLite's real StatefulNnApiDelegate, compiled from a TensorFlow or LiteRT tree, to
// models over a stub NNAPI whose one accelerator accepts every operation, and print the execution plan.
//
//   nnapi_probe [--android-api 29[,30...]] [--accelerator NAME] [--disallow-nnapi-cpu]
//               [--max-partitions 3] MODEL.tflite...
//
// One JSON object per line on stdout, for every model and API level:
//
//   {"model": "m.tflite", "android_api": 29, "feature_level": 29, "status": "ok", "hook": true,
//    "nodes": [{"index": 71, "type": "TfLiteNnapiDelegate", "ops": [0, 1], "outputs": [7]}, ...],
//    "refused": [{"op": 2, "op_type": "ARG_MAX", "reason": "NNAPI only supports int32 output."}],
//    "messages": ["..."]}
//
// status: "ok" (plan printed), "delegate_error" (ModifyGraphWithDelegate failed: no plan, see messages),
// "model_error" (the model could not be read or built). The plan, the refusals and the messages all come
// from the delegate's own code: refusals are the lines it logs with NNAPI_VERBOSE_VALIDATION, attributed
// to nodes through the vendor plugin's ValidateNode hook, which Validate() calls first for every node
// ("hook": false where the tree has no vendor plugin: the lines are then in node order but unattributed).
// Exit codes: 0 every case ran, 2 bad usage. Nothing is ever invoked: every builtin gets a no-op kernel.
//
// probe_tflite.h is written by the build recipe (deeplab_nnapi.probe.build): it includes the TFLite headers
// from where the tree keeps them (tensorflow/lite/... or tflite/...).

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "probe_tflite.h"

namespace {

// ---- The stub NNAPI ------------------------------------------------------------------------------------

int g_api = 29;                     // android_sdk_version
int64_t g_feature_level = 29;       // runtime and device feature level
std::string g_device = "probe-accelerator";
int g_operation_count = 0;          // operations of the NNAPI model being built
char g_handle;                      // every NNAPI object is this address

template <class T>
T* Handle() { return reinterpret_cast<T*>(&g_handle); }

// Assign FIELD of the NnApi table when this tree's NnApi has it (older trees lack the newer functions).
#define PROBE_SETTER(FIELD)                                                            \
  template <class N, class V>                                                          \
  auto Set_##FIELD(N& n, V v, int) -> decltype(n.FIELD = v, void()) { n.FIELD = v; }   \
  template <class N, class V>                                                          \
  void Set_##FIELD(N&, V, long) {}

// A function of any signature that does nothing and succeeds (ANEURALNETWORKS_NO_ERROR is 0).
template <class R, class... A>
void SetOk(R (*&f)(A...)) { f = [](A...) -> R { return R(); }; }
#define PROBE_OK(FIELD) \
  PROBE_SETTER(FIELD)   \
  template <class N> auto Ok_##FIELD(N& n, int) -> decltype(SetOk(n.FIELD), void()) { SetOk(n.FIELD); } \
  template <class N> void Ok_##FIELD(N&, long) {}

PROBE_SETTER(nnapi_runtime_feature_level)
PROBE_SETTER(ANeuralNetworksModel_create)
PROBE_SETTER(ANeuralNetworksModel_addOperation)
PROBE_SETTER(ANeuralNetworksModel_getSupportedOperationsForDevices)
PROBE_SETTER(ANeuralNetworksCompilation_create)
PROBE_SETTER(ANeuralNetworksCompilation_createForDevices)
PROBE_SETTER(ANeuralNetworksExecution_create)
PROBE_SETTER(ANeuralNetworksMemory_createFromFd)
PROBE_SETTER(ANeuralNetworksBurst_create)
PROBE_SETTER(ANeuralNetworks_getDeviceCount)
PROBE_SETTER(ANeuralNetworks_getDevice)
PROBE_SETTER(ANeuralNetworksDevice_getName)
PROBE_SETTER(ANeuralNetworksDevice_getFeatureLevel)
PROBE_SETTER(ANeuralNetworksDevice_getType)
PROBE_SETTER(ASharedMemory_create)
PROBE_OK(ANeuralNetworksModel_free)
PROBE_OK(ANeuralNetworksModel_addOperand)
PROBE_OK(ANeuralNetworksModel_setOperandValue)
PROBE_OK(ANeuralNetworksModel_setOperandValueFromMemory)
PROBE_OK(ANeuralNetworksModel_setOperandSymmPerChannelQuantParams)
PROBE_OK(ANeuralNetworksModel_identifyInputsAndOutputs)
PROBE_OK(ANeuralNetworksModel_relaxComputationFloat32toFloat16)
PROBE_OK(ANeuralNetworksModel_finish)
PROBE_OK(ANeuralNetworksCompilation_free)
PROBE_OK(ANeuralNetworksCompilation_setPreference)
PROBE_OK(ANeuralNetworksCompilation_setCaching)
PROBE_OK(ANeuralNetworksCompilation_setPriority)
PROBE_OK(ANeuralNetworksCompilation_setTimeout)
PROBE_OK(ANeuralNetworksCompilation_finish)
PROBE_OK(ANeuralNetworksExecution_free)
PROBE_OK(ANeuralNetworksExecution_setInputFromMemory)
PROBE_OK(ANeuralNetworksExecution_setOutputFromMemory)
PROBE_OK(ANeuralNetworksExecution_setTimeout)
PROBE_OK(ANeuralNetworksExecution_setLoopTimeout)
PROBE_OK(ANeuralNetworksExecution_setReusable)
PROBE_OK(ANeuralNetworksExecution_enableInputAndOutputPadding)
PROBE_OK(ANeuralNetworksMemory_free)
PROBE_OK(ANeuralNetworksBurst_free)
PROBE_OK(ANeuralNetworksEvent_free)

NnApi StubNnApi() {
  NnApi n{};  // every function not set here stays null, as on a device that lacks it
  n.nnapi_exists = true;
  n.android_sdk_version = g_api;
  Set_nnapi_runtime_feature_level(n, g_feature_level, 0);
  Set_ANeuralNetworksModel_create(n, [](ANeuralNetworksModel** m) -> int {
    g_operation_count = 0;
    *m = Handle<ANeuralNetworksModel>();
    return 0;
  }, 0);
  Set_ANeuralNetworksModel_addOperation(n, [](ANeuralNetworksModel*, ANeuralNetworksOperationType, uint32_t,
                                              const uint32_t*, uint32_t, const uint32_t*) -> int {
    ++g_operation_count;
    return 0;
  }, 0);
  // The accelerator supports every operation the delegate hands it.
  Set_ANeuralNetworksModel_getSupportedOperationsForDevices(
      n, [](const ANeuralNetworksModel*, const ANeuralNetworksDevice* const*, uint32_t, bool* ops) -> int {
        for (int i = 0; i < g_operation_count; ++i) ops[i] = true;
        return 0;
      }, 0);
  Set_ANeuralNetworksCompilation_create(n, [](ANeuralNetworksModel*, ANeuralNetworksCompilation** c) -> int {
    *c = Handle<ANeuralNetworksCompilation>();
    return 0;
  }, 0);
  Set_ANeuralNetworksCompilation_createForDevices(
      n, [](ANeuralNetworksModel*, const ANeuralNetworksDevice* const*, uint32_t,
            ANeuralNetworksCompilation** c) -> int {
        *c = Handle<ANeuralNetworksCompilation>();
        return 0;
      }, 0);
  Set_ANeuralNetworksExecution_create(n, [](ANeuralNetworksCompilation*, ANeuralNetworksExecution** e) -> int {
    *e = Handle<ANeuralNetworksExecution>();
    return 0;
  }, 0);
  Set_ANeuralNetworksMemory_createFromFd(n, [](size_t, int, int, size_t, ANeuralNetworksMemory** m) -> int {
    *m = Handle<ANeuralNetworksMemory>();
    return 0;
  }, 0);
  Set_ANeuralNetworksBurst_create(n, [](ANeuralNetworksCompilation*, ANeuralNetworksBurst** b) -> int {
    *b = Handle<ANeuralNetworksBurst>();
    return 0;
  }, 0);
  // Two devices: the CPU reference and our accelerator.
  Set_ANeuralNetworks_getDeviceCount(n, [](uint32_t* count) -> int {
    *count = 2;
    return 0;
  }, 0);
  Set_ANeuralNetworks_getDevice(n, [](uint32_t index, ANeuralNetworksDevice** d) -> int {
    *d = reinterpret_cast<ANeuralNetworksDevice*>(&g_handle + (index == 0 ? 0 : 1));
    return index < 2 ? 0 : 4;  // ANEURALNETWORKS_BAD_DATA
  }, 0);
  Set_ANeuralNetworksDevice_getName(n, [](const ANeuralNetworksDevice* d, const char** name) -> int {
    *name = reinterpret_cast<const char*>(d) == &g_handle ? "nnapi-reference" : g_device.c_str();
    return 0;
  }, 0);
  Set_ANeuralNetworksDevice_getFeatureLevel(n, [](const ANeuralNetworksDevice*, int64_t* level) -> int {
    *level = g_feature_level;
    return 0;
  }, 0);
  Set_ANeuralNetworksDevice_getType(n, [](const ANeuralNetworksDevice* d, int32_t* type) -> int {
    *type = reinterpret_cast<const char*>(d) == &g_handle ? 2 : 4;  // CPU, ACCELERATOR
    return 0;
  }, 0);
  Set_ASharedMemory_create(n, [](const char*, size_t) -> int { return open("/dev/zero", O_RDWR); }, 0);
#define PROBE_APPLY_OK(FIELD) Ok_##FIELD(n, 0);
  PROBE_APPLY_OK(ANeuralNetworksModel_free)
  PROBE_APPLY_OK(ANeuralNetworksModel_addOperand)
  PROBE_APPLY_OK(ANeuralNetworksModel_setOperandValue)
  PROBE_APPLY_OK(ANeuralNetworksModel_setOperandValueFromMemory)
  PROBE_APPLY_OK(ANeuralNetworksModel_setOperandSymmPerChannelQuantParams)
  PROBE_APPLY_OK(ANeuralNetworksModel_identifyInputsAndOutputs)
  PROBE_APPLY_OK(ANeuralNetworksModel_relaxComputationFloat32toFloat16)
  PROBE_APPLY_OK(ANeuralNetworksModel_finish)
  PROBE_APPLY_OK(ANeuralNetworksCompilation_free)
  PROBE_APPLY_OK(ANeuralNetworksCompilation_setPreference)
  PROBE_APPLY_OK(ANeuralNetworksCompilation_setCaching)
  PROBE_APPLY_OK(ANeuralNetworksCompilation_setPriority)
  PROBE_APPLY_OK(ANeuralNetworksCompilation_setTimeout)
  PROBE_APPLY_OK(ANeuralNetworksCompilation_finish)
  PROBE_APPLY_OK(ANeuralNetworksExecution_free)
  PROBE_APPLY_OK(ANeuralNetworksExecution_setInputFromMemory)
  PROBE_APPLY_OK(ANeuralNetworksExecution_setOutputFromMemory)
  PROBE_APPLY_OK(ANeuralNetworksExecution_setTimeout)
  PROBE_APPLY_OK(ANeuralNetworksExecution_setLoopTimeout)
  PROBE_APPLY_OK(ANeuralNetworksExecution_setReusable)
  PROBE_APPLY_OK(ANeuralNetworksExecution_enableInputAndOutputPadding)
  PROBE_APPLY_OK(ANeuralNetworksMemory_free)
  PROBE_APPLY_OK(ANeuralNetworksBurst_free)
  PROBE_APPLY_OK(ANeuralNetworksEvent_free)
  return n;
}

// ---- Which node the delegate is validating -------------------------------------------------------------

// Validate() first asks the vendor plugin about every node; the probe's plugin never claims one, it only
// writes a marker into the captured log, so the refusal lines that follow belong to that node.
const char kMarker[] = "\x1e" "probe-node ";
const tflite::Interpreter* g_interpreter = nullptr;

int NodeIndex(const TfLiteNode* node) {
  for (int i = 0; g_interpreter && i < static_cast<int>(g_interpreter->nodes_size()); ++i) {
    if (&g_interpreter->node_and_registration(i)->first == node) return i;
  }
  return -1;
}

template <class Plugin>
Plugin* ProbePlugin() {
  static Plugin plugin = [] {
    Plugin p{};
    p.ValidateNode = [](const TfLiteContext*, const TfLiteRegistration*, const TfLiteNode* node) -> bool {
      std::fprintf(stderr, "%s%d\n", kMarker, NodeIndex(node));
      return false;
    };
    return p;
  }();
  return &plugin;
}

template <class O>
auto SetHook(O& options, int) -> decltype(options.vendor_plugin, bool()) {
  options.vendor_plugin = ProbePlugin<std::remove_pointer_t<decltype(options.vendor_plugin)>>();
  return true;
}
template <class O>
bool SetHook(O&, long) { return false; }

template <class O>
auto SetMaxPartitions(O& options, int value, int) -> decltype(options.max_number_delegated_partitions, void()) {
  options.max_number_delegated_partitions = value;
}
template <class O>
void SetMaxPartitions(O&, int, long) {}

template <class O>
auto SetDisallowCpu(O& options, bool value, int) -> decltype(options.disallow_nnapi_cpu, void()) {
  options.disallow_nnapi_cpu = value;
}
template <class O>
void SetDisallowCpu(O&, bool, long) {}

// ---- Capturing what the delegate logs (fd 2) -----------------------------------------------------------

class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_ = dup(2);
    if (file_ != nullptr && saved_ >= 0) dup2(fileno(file_), 2);
  }
  std::string Finish() {
    std::fflush(stderr);
    if (saved_ >= 0) {
      dup2(saved_, 2);
      close(saved_);
      saved_ = -1;
    }
    std::string text;
    if (file_ != nullptr) {
      std::rewind(file_);
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof(buf), file_)) > 0) text.append(buf, n);
      std::fclose(file_);
      file_ = nullptr;
    }
    return text;
  }
  ~StderrCapture() { Finish(); }

 private:
  FILE* file_ = nullptr;
  int saved_ = -1;
};

class Reporter : public tflite::ErrorReporter {
 public:
  int Report(const char* format, va_list args) override {
    char buf[2048];
    const int n = std::vsnprintf(buf, sizeof(buf), format, args);
    messages.emplace_back(buf);
    return n;
  }
  std::vector<std::string> messages;
};

// ---- No kernels: the model is never invoked ------------------------------------------------------------

class Resolver : public tflite::MutableOpResolver {
 public:
  Resolver() {
    static TfLiteRegistration noop{};
    for (int op = tflite::BuiltinOperator_MIN; op <= tflite::BuiltinOperator_MAX; ++op) {
      if (op == tflite::BuiltinOperator_CUSTOM) continue;
      AddBuiltin(static_cast<tflite::BuiltinOperator>(op), &noop, 1, 64);
    }
  }
  const TfLiteRegistration* FindOp(tflite::BuiltinOperator op, int version) const override {
    return tflite::MutableOpResolver::FindOp(op, version);
  }
  const TfLiteRegistration* FindOp(const char* op, int version) const override {
    auto it = custom_.find(op);
    if (it == custom_.end()) {
      auto name = std::make_unique<std::string>(op);
      TfLiteRegistration reg{};
      reg.builtin_code = tflite::BuiltinOperator_CUSTOM;
      reg.custom_name = name->c_str();
      reg.version = version;
      names_.push_back(std::move(name));
      it = custom_.emplace(op, reg).first;
    }
    return &it->second;
  }

 private:
  mutable std::map<std::string, TfLiteRegistration> custom_;
  mutable std::vector<std::unique_ptr<std::string>> names_;
};

// ---- Output --------------------------------------------------------------------------------------------

std::string Json(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Messages(const std::vector<std::string>& lines) {
  std::string out = "[";
  for (size_t i = 0; i < lines.size(); ++i) out += (i ? ", " : "") + Json(lines[i]);
  return out + "]";
}

std::string OpName(const TfLiteRegistration& reg) {
  if (reg.builtin_code == tflite::BuiltinOperator_CUSTOM && reg.custom_name) return reg.custom_name;
  if (reg.builtin_code >= tflite::BuiltinOperator_MIN && reg.builtin_code <= tflite::BuiltinOperator_MAX) {
    const char* name = tflite::EnumNameBuiltinOperator(static_cast<tflite::BuiltinOperator>(reg.builtin_code));
    if (name && *name) return name;
  }
  return "BUILTIN_" + std::to_string(reg.builtin_code);
}

struct Options {
  std::vector<int> apis{29};
  std::string accelerator;
  bool disallow_nnapi_cpu = false;
  int max_partitions = 3;
  std::vector<std::string> models;
};

// Android API level -> NNAPI feature level a device of that level reports (NeuralNetworksTypes.h).
int64_t FeatureLevel(int api) {
  if (api <= 31) return api;
  if (api == 32) return 31;          // Android 12L: ANEURALNETWORKS_FEATURE_LEVEL_5
  return 1000006 + (api - 33);       // Android 13, 14, 15: ANEURALNETWORKS_FEATURE_LEVEL_6, 7, 8
}

void ProbeOne(const std::string& path, int api, const Options& opt) {
  g_api = api;
  g_feature_level = FeatureLevel(api);
  std::string head = "{\"model\": " + Json(path) + ", \"android_api\": " + std::to_string(api) +
                     ", \"feature_level\": " + std::to_string(g_feature_level);
  Reporter reporter;
  std::unique_ptr<tflite::Interpreter> interpreter;
  std::string built_log;
  {
    StderrCapture capture;
    auto model = tflite::FlatBufferModel::VerifyAndBuildFromFile(path.c_str(), nullptr, &reporter);
    Resolver resolver;
    if (model) tflite::InterpreterBuilder(*model, resolver)(&interpreter);
    built_log = capture.Finish();
    if (!model || !interpreter) {
      if (!built_log.empty()) reporter.messages.push_back(built_log);
      std::printf("%s, \"status\": \"model_error\", \"messages\": %s}\n", head.c_str(),
                  Messages(reporter.messages).c_str());
      return;
    }
    // The interpreter keeps the model's pointers: apply the delegate while the model is alive.
    NnApi nnapi = StubNnApi();
    tflite::StatefulNnApiDelegate::Options options;
    if (!opt.accelerator.empty()) options.accelerator_name = opt.accelerator.c_str();
    SetDisallowCpu(options, opt.disallow_nnapi_cpu, 0);
    SetMaxPartitions(options, opt.max_partitions, 0);
    const bool hook = SetHook(options, 0);
    g_device = opt.accelerator.empty() ? "probe-accelerator" : opt.accelerator;
    g_interpreter = interpreter.get();
    StderrCapture delegation;
    tflite::StatefulNnApiDelegate delegate(&nnapi, options);
    const TfLiteStatus status = interpreter->ModifyGraphWithDelegate(&delegate);
    const std::string log = delegation.Finish();
    g_interpreter = nullptr;

    // Split the log: markers name the node being validated; refusal lines belong to it.
    std::string refused = "[";
    std::vector<std::string> other;
    int current = -1;
    size_t start = 0;
    bool first = true;
    while (start < log.size()) {
      size_t end = log.find('\n', start);
      if (end == std::string::npos) end = log.size();
      const std::string line = log.substr(start, end - start);
      start = end + 1;
      static const char kRefused[] = " refused by NNAPI delegate: ";
      const size_t at = line.find(kRefused);
      if (line.compare(0, sizeof(kMarker) - 1, kMarker) == 0) {
        current = std::atoi(line.c_str() + sizeof(kMarker) - 1);
      } else if (at != std::string::npos) {
        // "WARNING: Operator RESIZE_BILINEAR (v3) refused by NNAPI delegate: <reason>"
        const size_t op_at = line.find("Operator ");
        std::string op_type;
        if (op_at != std::string::npos && op_at < at) {
          op_type = line.substr(op_at + 9, at - op_at - 9);
          const size_t v = op_type.find(" (v");
          if (v != std::string::npos) op_type.resize(v);
        }
        refused += std::string(first ? "" : ", ") + "{\"op\": " + std::to_string(hook ? current : -1) +
                   ", \"op_type\": " + Json(op_type) + ", \"reason\": " +
                   Json(line.substr(at + sizeof(kRefused) - 1)) + "}";
        first = false;
      } else if (!line.empty()) {
        other.push_back(line);
      }
    }
    refused += "]";
    for (const auto& m : reporter.messages) other.push_back(m);
    std::string out = head + ", \"hook\": " + (hook ? "true" : "false");
    if (status != kTfLiteOk) {
      std::printf("%s, \"status\": \"delegate_error\", \"refused\": %s, \"messages\": %s}\n", out.c_str(),
                  refused.c_str(), Messages(other).c_str());
      return;
    }
    out += ", \"status\": \"ok\", \"nodes\": [";
    bool first_node = true;
    for (int index : interpreter->execution_plan()) {
      const auto* nr = interpreter->node_and_registration(index);
      const TfLiteNode& node = nr->first;
      const TfLiteRegistration& reg = nr->second;
      std::string type;
      std::vector<int> ops;
      if (reg.custom_name != nullptr && std::strcmp(reg.custom_name, "TfLiteNnapiDelegate") == 0) {
        type = "TfLiteNnapiDelegate";
        // A delegate node carries its TfLiteDelegateParams as builtin_data.
        const auto* params = reinterpret_cast<const TfLiteDelegateParams*>(node.builtin_data);
        for (int i = 0; params && params->nodes_to_replace && i < params->nodes_to_replace->size; ++i) {
          ops.push_back(params->nodes_to_replace->data[i]);
        }
      } else {
        type = OpName(reg);
        ops.push_back(index);
      }
      out += std::string(first_node ? "" : ", ") + "{\"index\": " + std::to_string(index) +
             ", \"type\": " + Json(type) + ", \"ops\": [";
      for (size_t i = 0; i < ops.size(); ++i) out += (i ? ", " : "") + std::to_string(ops[i]);
      out += "], \"outputs\": [";
      for (int i = 0; node.outputs && i < node.outputs->size; ++i) {
        out += (i ? ", " : "") + std::to_string(node.outputs->data[i]);
      }
      out += "]}";
      first_node = false;
    }
    std::printf("%s], \"refused\": %s, \"messages\": %s}\n", out.c_str(), refused.c_str(),
                Messages(other).c_str());
  }
}

[[noreturn]] void Usage(const std::string& message) {
  std::fprintf(stderr,
               "nnapi_probe: error: %s (usage: nnapi_probe [--android-api N[,N...]] [--accelerator NAME] "
               "[--disallow-nnapi-cpu] [--max-partitions N] MODEL.tflite...)\n",
               message.c_str());
  std::exit(2);
}

int ParseInt(const std::string& flag, const std::string& text, int lo, int hi) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi) {
    Usage(flag + " wants integers in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return static_cast<int>(v);
}

Options ParseArgs(int argc, char** argv) {
  Options opt;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (options_done) {
      opt.models.push_back(a);
      continue;
    }
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--android-api") {
      opt.apis.clear();
      const std::string list = value();
      size_t start = 0;
      while (start <= list.size()) {
        size_t end = list.find(',', start);
        if (end == std::string::npos) end = list.size();
        opt.apis.push_back(ParseInt(a, list.substr(start, end - start), 27, 35));
        start = end + 1;
      }
    } else if (a == "--accelerator") {
      opt.accelerator = value();
    } else if (a == "--disallow-nnapi-cpu") {
      opt.disallow_nnapi_cpu = true;
    } else if (a == "--max-partitions") {
      opt.max_partitions = ParseInt(a, value(), -1, 1 << 20);
    } else if (a == "--") {
      options_done = true;
    } else if (!a.empty() && a[0] == '-') {
      Usage("unknown argument " + a);
    } else {
      opt.models.push_back(a);
    }
  }
  if (opt.models.empty()) Usage("no MODEL.tflite given");
  return opt;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = ParseArgs(argc, argv);
  for (const auto& model : opt.models) {
    for (int api : opt.apis) {
      ProbeOne(model, api, opt);
      std::fflush(stdout);
    }
  }
  return 0;
}
