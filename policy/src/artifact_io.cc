#include "lcio/policy/artifact_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "artifact_internal.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/message.h"
#include "lcio/env/action_table.h"

namespace lcio::policy {
namespace {

constexpr int64_t kMaxArtifactBytes = int64_t{1} << 30;  // far above any MLP we train

absl::Status Fail(const std::string& path, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat("artifact ", data::Shorten(path), ": ", rule));
}

std::string ShapeText(const torch::Tensor& t) {
  std::string text = "[";
  for (int64_t d = 0; d < t.dim(); ++d) absl::StrAppend(&text, d ? ", " : "", t.size(d));
  return text + "]";
}

// The bytes policy_version hashes for the network: each layer's shape and
// float32 values as the archive stores them, weights [out, in] then biases
// [out] (little-endian on every platform we build for).
std::string NetworkBytes(const Network& network) {
  std::string bytes = absl::StrCat("activation=", ActivationName(network.activation), ";");
  for (int l = 0; l < network.num_layers(); ++l) {
    const int in = network.sizes[l], out = network.sizes[l + 1];
    absl::StrAppend(&bytes, "[", out, ", ", in, "]:");
    const std::vector<float>& w = network.weights[l];  // [in][out]
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i)
        bytes.append(reinterpret_cast<const char*>(&w[static_cast<size_t>(i) * out + o]),
                     sizeof(float));
    absl::StrAppend(&bytes, "[", out, "]:");
    bytes.append(reinterpret_cast<const char*>(network.biases[l].data()), sizeof(float) * out);
  }
  return bytes;
}

std::string ContentVersion(const std::string& algo, const Network& network,
                           const ArtifactMetadata& metadata) {
  const std::string hash = data::Sha256Hex(NetworkBytes(network) + MetadataHashText(metadata));
  return absl::StrCat(algo, "-", hash.substr(0, 12));
}

std::string NowUtc() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Layer l's weights as the archive stores them: a float32 [out, in] tensor.
torch::Tensor WeightTensor(const Network& network, int l) {
  std::vector<float> w = network.weights[l];
  return torch::from_blob(w.data(), {network.sizes[l], network.sizes[l + 1]}, torch::kFloat32)
      .t()
      .contiguous();
}

torch::Tensor BiasTensor(const Network& network, int l) {
  std::vector<float> b = network.biases[l];
  return torch::from_blob(b.data(), {static_cast<int64_t>(b.size())}, torch::kFloat32).clone();
}

std::string ForwardSource(size_t num_layers, const std::string& activation);

// The TorchScript module of `network`: its parameters and lcio's forward.
torch::jit::Module BuildModule(const Network& network, const std::string& activation) {
  torch::jit::Module module("LcioPolicyMlp");
  for (int i = 0; i < network.num_layers(); ++i) {
    module.register_parameter(absl::StrCat("w", i), WeightTensor(network, i), /*is_buffer=*/false);
    module.register_parameter(absl::StrCat("b", i), BiasTensor(network, i), /*is_buffer=*/false);
  }
  module.define(ForwardSource(network.num_layers(), activation));
  return module;
}

std::string ForwardSource(size_t num_layers, const std::string& activation) {
  std::string source = "def forward(self, x):\n";
  std::string input = "x";
  for (size_t i = 0; i < num_layers; ++i) {
    const std::string affine =
        absl::StrCat("torch.addmm(self.b", i, ", ", input, ", self.w", i, ".t())");
    if (i + 1 < num_layers) {
      absl::StrAppend(&source, "    h = torch.", activation, "(", affine, ")\n");
      input = "h";
    } else {
      absl::StrAppend(&source, "    return ", affine, "\n");
    }
  }
  return source;
}

absl::Status WriteAtomically(const std::string& path, const std::string& bytes) {
  if (absl::Status s = data::CheckReplaceableOutput(path); !s.ok()) return s;
  const std::string temp = data::TemporaryPathFor(path);
  auto io_error = [&](const std::string& what, int error) {
    return absl::UnavailableError(absl::StrCat("writing artifact ", data::Shorten(path), ": ", what,
                                               ": ", std::strerror(error)));
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create its temporary file beside it", errno);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status status = io_error("write failed", n < 0 ? errno : ENOSPC);
      ::close(fd);
      ::unlink(temp.c_str());
      return status;
    }
    written += static_cast<size_t>(n);
  }
  // Durable before visible: a crash leaves the old file or the complete new
  // one, never a torn artifact.
  return data::PublishTemporaryFile(temp, path, fd);
}

}  // namespace

// What the archive's entries declare they expand to, read from the zip
// central directory before LibTorch extracts anything: LibTorch allocates
// what an entry declares, so a 735 KB file deflating to 600 MiB took 1.8 GB.
// A TorchScript archive stores its tensors and metadata (stored = their own
// size) and deflates only its code, a few kilobytes at ratios near 2.
constexpr int64_t kMaxMetadataBytes = int64_t{64} << 20;
constexpr int64_t kMaxDeflateRatio = 64;
constexpr int64_t kDeflateAllowanceBytes = int64_t{1} << 20;

absl::Status CheckZipEntries(const std::string& bytes, const std::string& path) {
  auto u16 = [&bytes](size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])) |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 8;
  };
  auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  // The end of central directory record: 22 bytes and a comment of at most
  // 65535, at the end of the file.
  constexpr size_t kEndRecord = 22;
  if (bytes.size() < kEndRecord)
    return Fail(path, "not a TorchScript archive (no zip end of central directory)");
  size_t end = std::string::npos;
  for (size_t at = bytes.size() - kEndRecord + 1; at-- > 0;) {
    if (bytes.size() - at > kEndRecord + 65535) break;
    if (u32(at) == 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end == std::string::npos)
    return Fail(path, "not a TorchScript archive (no zip end of central directory)");
  uint64_t entries = u16(end + 10), directory = u32(end + 16);
  // LibTorch writes a zip64 end record too, and its reader (miniz) follows
  // that one: a file whose two records point at two directories would pass
  // this check with one and be extracted from the other.
  auto u64 = [&](size_t at) { return uint64_t{u32(at)} | uint64_t{u32(at + 4)} << 32; };
  constexpr size_t kLocator = 20, kEnd64 = 56;
  if (end >= kLocator && u32(end - kLocator) == 0x07064b50) {
    const uint64_t end64 = u64(end - kLocator + 8);
    if (end64 > end - kLocator || end - kLocator - end64 < kEnd64 || u32(end64) != 0x06064b50)
      return Fail(path, "not a TorchScript archive (zip64 end of central directory is corrupt)");
    const uint64_t entries64 = u64(end64 + 32), directory64 = u64(end64 + 48);
    if ((entries != 0xffff && entries != entries64) ||
        (directory != 0xffffffffu && directory != directory64))
      return Fail(path,
                  "not a TorchScript archive (its zip end records point at different "
                  "central directories)");
    entries = entries64;
    directory = directory64;
  }
  if (directory > end || entries > (end - directory) / 46)
    return Fail(path, "not a TorchScript archive (zip central directory is corrupt)");
  int64_t total = 0;
  size_t at = directory;
  for (uint64_t e = 0; e < entries; ++e) {
    if (at + 46 > end || u32(at) != 0x02014b50)
      return Fail(path, "not a TorchScript archive (zip central directory is corrupt)");
    const uint32_t method = u16(at + 10), packed = u32(at + 20), size = u32(at + 24);
    const size_t name_bytes = u16(at + 28);
    if (at + 46 + name_bytes > end)
      return Fail(path, "not a TorchScript archive (zip central directory is corrupt)");
    const std::string name = bytes.substr(at + 46, name_bytes);
    auto refuse = [&](const std::string& why) {
      return Fail(path, absl::StrCat("zip entry ", data::Shorten(name, 96), " declares ", size,
                                     " bytes (", packed, " packed): ", why));
    };
    if (size == 0xffffffffu || packed == 0xffffffffu)
      return refuse("sizes past 4 GiB (zip64) are not an lcio policy's");
    if (method != 0 && static_cast<int64_t>(size) >
                           std::max(kDeflateAllowanceBytes, kMaxDeflateRatio * int64_t{packed}))
      return refuse(absl::StrCat("expands more than ", kMaxDeflateRatio, " times"));
    if (name.size() >= std::strlen(kMetadataFile) &&
        name.compare(name.size() - std::strlen(kMetadataFile), std::string::npos, kMetadataFile) ==
            0 &&
        static_cast<int64_t>(size) > kMaxMetadataBytes)
      return refuse(absl::StrCat("metadata is at most ", kMaxMetadataBytes, " bytes"));
    total += size;
    if (total > kMaxArtifactBytes)
      return refuse(absl::StrCat("the entries expand past ", kMaxArtifactBytes, " bytes"));
    at += 46 + name_bytes + u16(at + 30) + u16(at + 32);
  }
  return absl::OkStatus();
}

namespace internal {

absl::StatusOr<LoadedArtifact> LoadArtifactFile(const std::string& path,
                                                const torch::Device& device) {
  // Opened once, without blocking, and checked through the descriptor: a
  // FIFO swapped in would otherwise hold the reload (and the shutdown behind
  // it) for ever.
  data::FileRead read = data::ReadWholeRegularFile(path, kMaxArtifactBytes);
  auto cannot_read = [&path](const std::string& why) {
    return absl::NotFoundError(
        absl::StrCat("artifact ", data::Shorten(path), ": cannot read: ", why));
  };
  switch (read.outcome) {
    case data::FileRead::Outcome::kRead:
      break;
    case data::FileRead::Outcome::kDirectory:
      return cannot_read("Is a directory");
    case data::FileRead::Outcome::kNotRegular:
      return Fail(path, "not a regular file");
    case data::FileRead::Outcome::kTooLarge:
      return Fail(path,
                  absl::StrCat("file has ", read.size, " bytes; at most ", kMaxArtifactBytes));
    default:  // kCannotOpen, kReadFailed
      return cannot_read(std::strerror(read.error));
  }
  if (read.bytes.empty()) return Fail(path, "file is empty");
  const std::string& bytes = read.bytes;
  if (bytes.size() < 4 || bytes.compare(0, 4, "PK\x03\x04") != 0)
    return Fail(path, "not a TorchScript archive (no zip header)");
  if (absl::Status sizes = CheckZipEntries(bytes, path); !sizes.ok()) return sizes;

  LoadedArtifact loaded;
  std::unordered_map<std::string, std::string> extra_files{{kMetadataFile, ""}};
  try {
    std::istringstream in(bytes);
    loaded.module = torch::jit::load(in, device, extra_files);
  } catch (const std::exception& e) {
    // First line only: LibTorch appends a C++ stack trace.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    return Fail(path,
                absl::StrCat("not a loadable TorchScript archive (truncated or corrupt?): ", what));
  } catch (...) {
    return Fail(path, "not a loadable TorchScript archive (truncated or corrupt?)");
  }
  const std::string& metadata_json = extra_files[kMetadataFile];
  if (metadata_json.empty())
    return Fail(path, absl::StrCat("archive has no ", kMetadataFile, ": not an lcio policy"));
  // Sizes inside the metadata are bounded where they are read; should one
  // still ask for more memory than there is, the file is refused, not the
  // process aborted (a server keeps serving its current policy).
  absl::StatusOr<ArtifactMetadata> metadata;
  try {
    metadata = MetadataFromJson(metadata_json, path);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("artifact ", path, ": its metadata needs more memory than there is"));
  }
  if (!metadata.ok()) return metadata.status();
  loaded.metadata = *std::move(metadata);
  const ArtifactMetadata& m = loaded.metadata;
  if (m.layer_sizes.empty()) return Fail(path, "network.layer_sizes is missing");

  try {
    const size_t num_layers = m.layer_sizes.size() - 1;
    auto activation = ParseActivation(m.activation);
    if (!activation.ok()) return Fail(path, std::string(activation.status().message()));
    loaded.network.activation = *activation;
    loaded.network.sizes = m.layer_sizes;
    for (size_t i = 0; i < num_layers; ++i) {
      for (const char* kind : {"w", "b"}) {
        const std::string name = absl::StrCat(kind, i);
        if (!loaded.module.hasattr(name) || !loaded.module.attr(name).isTensor())
          return Fail(path, absl::StrCat("network has no tensor ", name, " (metadata describes ",
                                         num_layers, " layers)"));
        torch::Tensor t = loaded.module.attr(name).toTensor().detach().to(torch::kCPU).contiguous();
        if (t.scalar_type() != torch::kFloat32)
          return Fail(path, absl::StrCat(name, " is ", t.scalar_type(), "; must be float32"));
        const std::vector<int64_t> want =
            kind[0] == 'w' ? std::vector<int64_t>{m.layer_sizes[i + 1], m.layer_sizes[i]}
                           : std::vector<int64_t>{m.layer_sizes[i + 1]};
        if (t.sizes().vec() != want)
          return Fail(path, absl::StrCat(name, " has shape ", ShapeText(t),
                                         " but layer_sizes gives ", ShapeText(torch::empty(want))));
        // The network value keeps weights input-major, the kernels' layout.
        if (kind[0] == 'w') t = t.t().contiguous();
        (kind[0] == 'w' ? loaded.network.weights : loaded.network.biases)
            .emplace_back(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
      }
    }
    if (loaded.module.hasattr(absl::StrCat("w", num_layers)))
      return Fail(path, absl::StrCat("network has more layers than the ", num_layers,
                                     " the metadata describes"));
    // Any edit of the weights or metadata after saving changes the hash.
    const std::string version = ContentVersion(m.algo, loaded.network, m);
    if (version != m.policy_version)
      return absl::DataLossError(absl::StrCat(
          "artifact ", path, ": content hash mismatch: policy_version is \"", m.policy_version,
          "\" but the content gives \"", version, "\" (the file was modified or corrupted)"));

    // The hash covers the parameters and the metadata, not the archive's
    // code: the module that serves is built here from those, with lcio's own
    // forward (the code SaveArtifact writes), so that an edited archive's code
    // (another computation, or a loop) is never run to score.
    loaded.module = BuildModule(loaded.network, m.activation);
    loaded.module.to(device);
    loaded.module.eval();
    // A test forward through it: right shape, finite, and the same scores as
    // the kernels' forward of the parameters and metadata (Network::Forward:
    // what the CPU serves and the trainer evaluated).
    c10::InferenceMode guard;
    torch::Tensor zero = torch::zeros({1, m.layer_sizes.front()});
    torch::Tensor probe =
        torch::linspace(-1.0, 1.0, 2 * m.layer_sizes.front()).reshape({2, m.layer_sizes.front()});
    torch::Tensor input = torch::cat({zero, probe});
    torch::jit::IValue result = loaded.module.forward({input.to(device)});
    if (!result.isTensor()) return Fail(path, "forward does not return a tensor");
    torch::Tensor scores = result.toTensor().to(torch::kCPU);
    if (scores.sizes().vec() != std::vector<int64_t>{3, m.num_actions})
      return Fail(path, absl::StrCat("forward(obs[3, ", m.layer_sizes.front(), "]) gives ",
                                     ShapeText(scores), "; expected [3, ", m.num_actions, "]"));
    if (!torch::isfinite(scores).all().item<bool>())
      return Fail(path, "forward of a test observation is not finite");
    if (absl::Status s = loaded.network.Validate(); !s.ok())
      return Fail(path, std::string(s.message()));
    if (loaded.network.output_size() != m.num_actions)
      return Fail(path, absl::StrCat("network has ", loaded.network.output_size(),
                                     " outputs; the action table has ", m.num_actions));
    torch::Tensor expected = torch::empty({3, m.num_actions}, torch::kFloat32);
    const torch::Tensor contiguous_input = input.contiguous();
    loaded.network.Forward(contiguous_input.data_ptr<float>(), 3, expected.data_ptr<float>());
    if (!torch::allclose(scores.to(torch::kFloat32), expected, 1e-4, 1e-4))
      return Fail(path,
                  "TorchScript forward disagrees with the kernels' forward of its parameters");
  } catch (const std::exception& e) {
    std::string what = e.what();
    return Fail(path, absl::StrCat("network check failed: ", what.substr(0, what.find('\n'))));
  } catch (...) {
    return Fail(path, "network check failed");
  }
  return loaded;
}

}  // namespace internal

absl::Status SaveArtifact(const std::string& path, const Network& network,
                          ArtifactMetadata metadata) {
  try {
    if (absl::Status s = network.Validate(); !s.ok()) return Fail(path, std::string(s.message()));
    metadata.activation = ActivationName(network.activation);
    metadata.layer_sizes = network.sizes;
    // The action table follows from num_views; fill it when the caller left it out.
    if (metadata.num_actions == 0 && metadata.action_views.empty()) {
      auto table = env::ActionTable::Create(metadata.layout.num_views);
      if (!table.ok()) return Fail(path, std::string(table.status().message()));
      metadata.num_actions = table->size();
      for (int a = 0; a < table->size(); ++a) metadata.action_views.push_back(table->views(a));
    }
    // The lowest version that describes the file, so that older builds read
    // every artifact they would not misread (docs/artifact.md, versioning).
    metadata.format_version = metadata.fallback_json.empty() ? 1 : 2;
    metadata.policy_version.clear();
    metadata.created_utc = NowUtc();
    if (absl::Status status = ValidateMetadata(metadata, path); !status.ok()) return status;
    metadata.policy_version = ContentVersion(metadata.algo, network, metadata);

    torch::jit::Module module = BuildModule(network, metadata.activation);
    module.eval();
    std::ostringstream archive;
    module.save(archive, {{kMetadataFile, MetadataToJson(metadata, /*pretty=*/true)}});
    return WriteAtomically(path, std::move(archive).str());
  } catch (const std::exception& e) {
    std::string what = e.what();
    return absl::InternalError(
        absl::StrCat("saving artifact ", path, ": ", what.substr(0, what.find('\n'))));
  }
}

absl::StatusOr<ArtifactMetadata> ReadArtifactMetadata(const std::string& path) {
  auto loaded = internal::LoadArtifactFile(path, torch::Device(torch::kCPU));
  if (!loaded.ok()) return loaded.status();
  return std::move(loaded->metadata);
}

}  // namespace lcio::policy
