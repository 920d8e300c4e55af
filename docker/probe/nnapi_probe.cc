// nnapi_probe: apply TFLite's real StatefulNnApiDelegate to a model over the NNAPI test double that
// TensorFlow ships for its own delegate tests (tensorflow/lite/nnapi/nnapi_handler.h), and print the
// resulting execution plan as JSON, in the format of `tools/check_delegation.py --json`:
//
//   {"model": "...", "android_api": 29, "status": "ok",
//    "nodes": [{"type": "TfLiteNnapiDelegate", "ops": [0, 1, ...]}, {"type": "ARG_MAX", "ops": [70]}]}
//
// The stub device accepts every operation the delegate hands it, so the plan is decided by the delegate's
// own validation (the code our patches change) and TFLite's partitioning, exactly as on a phone whose
// driver supports everything. Usage:
//
//   nnapi_probe --model M.tflite [--android-api 29] [--accelerator NAME] [--disallow-nnapi-cpu]
//               [--max-partitions 3]
//
// Exit codes: 0 plan printed, 1 the delegate could not be applied, 2 bad usage or unreadable model.
// Built by docker/Dockerfile (stage "probe") inside the patched TensorFlow tree with this directory's BUILD.

#include <fcntl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/delegates/nnapi/nnapi_delegate.h"
#include "tensorflow/lite/interpreter.h"
#include "tensorflow/lite/kernels/register.h"
#include "tensorflow/lite/model.h"
#include "tensorflow/lite/nnapi/NeuralNetworksTypes.h"
#include "tensorflow/lite/nnapi/nnapi_handler.h"
#include "tensorflow/lite/nnapi/nnapi_implementation.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

// Operations added to the NNAPI model being built; the stub device claims support for all of them.
int g_operation_count = 0;

// The same set-up as TensorFlow's NnApiMock (nnapi_delegate_mock_test.h), without gtest: every NNAPI
// call succeeds, one accelerator named `device` exists beside nnapi-reference.
class ProbeNnApi : public tflite::nnapi::NnApiHandler {
 public:
  ProbeNnApi(NnApi* nnapi, int android_sdk_version, const std::string& device)
      : tflite::nnapi::NnApiHandler(nnapi) {
    nnapi_->nnapi_exists = true;
    nnapi_->android_sdk_version = android_sdk_version;
    nnapi_->nnapi_runtime_feature_level = android_sdk_version;

    nnapi_->ANeuralNetworksCompilation_free = [](ANeuralNetworksCompilation*) {};
    nnapi_->ANeuralNetworksMemory_free = [](ANeuralNetworksMemory*) {};
    nnapi_->ANeuralNetworksModel_free = [](ANeuralNetworksModel*) {};
    nnapi_->ANeuralNetworksExecution_free = [](ANeuralNetworksExecution*) {};
    nnapi_->ASharedMemory_create = [](const char*, size_t) -> int { return open("/dev/zero", O_RDWR); };
    nnapi_->ANeuralNetworksEvent_free = [](ANeuralNetworksEvent*) {};

    StubModelCreateWith([](ANeuralNetworksModel** model) -> int {
      g_operation_count = 0;
      *model = reinterpret_cast<ANeuralNetworksModel*>(1);
      return ANEURALNETWORKS_NO_ERROR;
    });
    AddOperandReturns<ANEURALNETWORKS_NO_ERROR>();
    SetOperandValueReturns<ANEURALNETWORKS_NO_ERROR>();
    StubAddOperationWith([](ANeuralNetworksModel*, ANeuralNetworksOperationType, uint32_t, const uint32_t*,
                            uint32_t, const uint32_t*) -> int {
      ++g_operation_count;
      return ANEURALNETWORKS_NO_ERROR;
    });
    IdentifyInputAndOutputsReturns<ANEURALNETWORKS_NO_ERROR>();
    RelaxComputationFloatReturns<ANEURALNETWORKS_NO_ERROR>();
    ModelFinishReturns<ANEURALNETWORKS_NO_ERROR>();
    MemoryCreateFromFdReturns<ANEURALNETWORKS_NO_ERROR>();
    CompilationCreateReturns<ANEURALNETWORKS_NO_ERROR>();
    CompilationCreateForDevicesReturns<ANEURALNETWORKS_NO_ERROR>();
    CompilationFinishReturns<ANEURALNETWORKS_NO_ERROR>();
    ExecutionCreateReturns<ANEURALNETWORKS_NO_ERROR>();
    ExecutionSetInputFromMemoryReturns<ANEURALNETWORKS_NO_ERROR>();
    ExecutionSetOutputFromMemoryReturns<ANEURALNETWORKS_NO_ERROR>();
    ExecutionComputeReturns<ANEURALNETWORKS_NO_ERROR>();
    ExecutionStartComputeReturns<ANEURALNETWORKS_NO_ERROR>();
    EventWaitReturns<ANEURALNETWORKS_NO_ERROR>();
    SetPriorityReturns<ANEURALNETWORKS_NO_ERROR>();
    SetOperandSymmPerChannelQuantParamsReturns<ANEURALNETWORKS_NO_ERROR>();
    // Used when an accelerator is named or the CPU reference is excluded: the device takes everything.
    StubGetSupportedOperationsForDevicesWith(
        [](const ANeuralNetworksModel*, const ANeuralNetworksDevice* const*, uint32_t,
           bool* supported) -> int {
          for (int i = 0; i < g_operation_count; ++i) supported[i] = true;
          return ANEURALNETWORKS_NO_ERROR;
        });
    SetNnapiSupportedDevice(device, android_sdk_version);
  }
};

struct Args {
  std::string model;
  int android_api = 29;
  std::string accelerator;
  bool disallow_nnapi_cpu = false;
  int max_partitions = 3;
};

[[noreturn]] void Usage(const std::string& message) {
  std::fprintf(stderr, "nnapi_probe: error: %s (usage: nnapi_probe --model M.tflite [--android-api N] "
               "[--accelerator NAME] [--disallow-nnapi-cpu] [--max-partitions N])\n", message.c_str());
  std::exit(2);
}

int ParseInt(const char* flag, const char* value, int lo, int hi) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < lo || v > hi) {
    Usage(std::string(flag) + " wants an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return static_cast<int>(v);
}

Args ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") {
      args.model = value();
    } else if (a == "--android-api") {
      args.android_api = ParseInt("--android-api", value(), 27, 35);
    } else if (a == "--accelerator") {
      args.accelerator = value();
    } else if (a == "--disallow-nnapi-cpu") {
      args.disallow_nnapi_cpu = true;
    } else if (a == "--max-partitions") {
      args.max_partitions = ParseInt("--max-partitions", value(), 0, 1 << 20);
    } else {
      Usage("unknown argument " + a);
    }
  }
  if (args.model.empty()) Usage("--model is required");
  return args;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);

  auto model = tflite::FlatBufferModel::BuildFromFile(args.model.c_str());
  if (!model) Usage("cannot read a TFLite model from " + args.model);
  // No default delegates: XNNPACK must not take the ops before NNAPI sees them.
  tflite::ops::builtin::BuiltinOpResolverWithoutDefaultDelegates resolver;
  std::unique_ptr<tflite::Interpreter> interpreter;
  if (tflite::InterpreterBuilder(*model, resolver)(&interpreter) != kTfLiteOk || !interpreter) {
    Usage("cannot build an interpreter for " + args.model);
  }

  NnApi nnapi = *NnApiImplementation();
  const std::string device = args.accelerator.empty() ? "probe-device" : args.accelerator;
  ProbeNnApi stub(&nnapi, args.android_api, device);

  tflite::StatefulNnApiDelegate::Options options;
  if (!args.accelerator.empty()) options.accelerator_name = args.accelerator.c_str();
  options.disallow_nnapi_cpu = args.disallow_nnapi_cpu;
  options.max_number_delegated_partitions = args.max_partitions;
  tflite::StatefulNnApiDelegate delegate(stub.GetNnApi(), options);

  const TfLiteStatus status = interpreter->ModifyGraphWithDelegate(&delegate);

  std::string json = "{\"model\": " + JsonString(args.model) +
                     ", \"android_api\": " + std::to_string(args.android_api) +
                     ", \"status\": " + (status == kTfLiteOk ? "\"ok\"" : "\"delegate_error\"") +
                     ", \"nodes\": [";
  bool first = true;
  for (int index : interpreter->execution_plan()) {
    const auto* node_and_reg = interpreter->node_and_registration(index);
    const TfLiteNode& node = node_and_reg->first;
    const TfLiteRegistration& reg = node_and_reg->second;
    std::string type;
    std::vector<int> ops;
    if (reg.custom_name != nullptr && std::strcmp(reg.custom_name, "TfLiteNnapiDelegate") == 0) {
      type = "TfLiteNnapiDelegate";
      // A delegate kernel node carries its TfLiteDelegateParams as builtin_data (subgraph.cc).
      const auto* params = reinterpret_cast<const TfLiteDelegateParams*>(node.builtin_data);
      for (int i = 0; params && i < params->nodes_to_replace->size; ++i) {
        ops.push_back(params->nodes_to_replace->data[i]);
      }
    } else if (reg.builtin_code == tflite::BuiltinOperator_CUSTOM && reg.custom_name != nullptr) {
      type = reg.custom_name;
      ops.push_back(index);
    } else {
      type = tflite::EnumNameBuiltinOperator(static_cast<tflite::BuiltinOperator>(reg.builtin_code));
      ops.push_back(index);
    }
    json += std::string(first ? "" : ", ") + "{\"type\": " + JsonString(type) + ", \"ops\": [";
    for (size_t i = 0; i < ops.size(); ++i) json += (i ? ", " : "") + std::to_string(ops[i]);
    json += "]}";
    first = false;
  }
  json += "]}";
  std::printf("%s\n", json.c_str());
  return status == kTfLiteOk ? 0 : 1;
}
