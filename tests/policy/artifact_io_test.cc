#include "lcio/policy/artifact_io.h"

#include <sys/stat.h>
#include <torch/script.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lcio/policy/inference.h"
#include "lcio/policy/testing.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;
using lcio::policy::ArtifactMetadata;
using lcio::policy::Network;
using lcio::policy::ReadArtifactMetadata;
using lcio::policy::SaveArtifact;
namespace policy_testing = lcio::policy::testing;

class ArtifactIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lcio_artifact_io_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string ReadBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void WriteBytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  // Values of a [rows, cols] tensor, transposed when `matrix` (the network
  // value stores weights input-major).
  static std::vector<float> Values(const torch::Tensor& t, bool matrix) {
    const torch::Tensor c = (matrix ? t.t() : t).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  // A network of the right shape for `metadata`.
  static Network MakeNetwork(const ArtifactMetadata& metadata, int hidden = 8) {
    torch::manual_seed(3);
    Network network;
    network.activation = lcio::policy::Activation::kRelu;
    const int in = metadata.layout.size();
    const int out =
        static_cast<int>(lcio::env::ActionTable::Create(metadata.layout.num_views)->size());
    network.sizes = {in, hidden, out};
    network.weights = {Values(torch::randn({hidden, in}), true),
                       Values(torch::randn({out, hidden}), true)};
    network.biases = {Values(torch::randn({hidden}), false), Values(torch::randn({out}), false)};
    return network;
  }
  // Rewrites the metadata inside an archive (keeping the network), as a
  // foreign tool or a newer lcio could have written it.
  static void EditMetadata(const std::string& from, const std::string& to,
                           const std::function<void(nlohmann::json&)>& edit) {
    std::unordered_map<std::string, std::string> extra{{lcio::policy::kMetadataFile, ""}};
    torch::jit::Module module = torch::jit::load(from, torch::kCPU, extra);
    nlohmann::json json = nlohmann::json::parse(extra[lcio::policy::kMetadataFile]);
    edit(json);
    module.save(to, {{lcio::policy::kMetadataFile, json.dump()}});
  }
  void ExpectLoadFails(const std::string& path, const std::string& needle) {
    auto metadata = ReadArtifactMetadata(path);
    ASSERT_FALSE(metadata.ok()) << "loaded " << path;
    EXPECT_NE(metadata.status().message().find(path), std::string::npos) << metadata.status();
    EXPECT_NE(metadata.status().message().find(needle), std::string::npos)
        << metadata.status() << " (wanted \"" << needle << "\")";
    auto engine = lcio::policy::InferenceEngine::Load(path, "cpu");
    EXPECT_FALSE(engine.ok());
  }

  fs::path dir_;
};

TEST_F(ArtifactIoTest, SaveThenReadRoundTrips) {
  auto saved = policy_testing::WriteTestArtifact(Path("p.pt"));
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_TRUE(std::regex_match(saved->policy_version, std::regex("test-[0-9a-f]{12}")))
      << saved->policy_version;
  EXPECT_TRUE(std::regex_match(saved->created_utc,
                               std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ")));
  EXPECT_EQ(saved->layer_sizes, (std::vector<int>{saved->layout.size(), 16, 16, 9}));
  EXPECT_EQ(saved->activation, "tanh");
  EXPECT_EQ(saved->num_actions, 9);
  EXPECT_EQ(saved->tasks.size(), 4u);
  auto read = ReadArtifactMetadata(Path("p.pt"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(lcio::policy::MetadataToJson(*read), lcio::policy::MetadataToJson(*saved));
  // No temporary file is left beside the artifact.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
}

// The artifact is renamed over its target: a device or a FIFO there would be
// replaced by a regular file, so it is refused and left as it is.
TEST_F(ArtifactIoTest, AnOutputThatIsNotARegularFileIsRefused) {
  ASSERT_EQ(::mkfifo(Path("fifo.pt").c_str(), 0600), 0);
  auto saved = policy_testing::WriteTestArtifact(Path("fifo.pt"));
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.status().code(), absl::StatusCode::kFailedPrecondition) << saved.status();
  EXPECT_NE(saved.status().message().find("is a FIFO"), std::string::npos) << saved.status();
  EXPECT_EQ(fs::status(Path("fifo.pt")).type(), fs::file_type::fifo);
  int files = 0;  // no temporary file left behind
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 0);
}

TEST_F(ArtifactIoTest, VersionIsAContentHash) {
  auto a = policy_testing::WriteTestArtifact(Path("a.pt"));
  auto b = policy_testing::WriteTestArtifact(Path("b.pt"));  // same content, later time
  policy_testing::TestArtifactOptions other;
  other.seed = 2;
  auto c = policy_testing::WriteTestArtifact(Path("c.pt"), other);
  other = {};
  other.algo = "rc-a2c";
  auto d = policy_testing::WriteTestArtifact(Path("d.pt"), other);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(a->policy_version, b->policy_version);
  EXPECT_NE(a->policy_version, c->policy_version);
  EXPECT_EQ(d->policy_version.rfind("rc-a2c-", 0), 0u) << d->policy_version;
}

TEST_F(ArtifactIoTest, LoadsWithPlainLibTorch) {
  ASSERT_TRUE(policy_testing::WriteTestArtifact(Path("p.pt")).ok());
  // No lcio code: what a Python user's torch.jit.load does.
  torch::jit::Module module = torch::jit::load(Path("p.pt"));
  auto metadata = ReadArtifactMetadata(Path("p.pt"));
  ASSERT_TRUE(metadata.ok());
  torch::Tensor obs = torch::rand({5, metadata->layout.size()});
  torch::Tensor scores = module.forward({obs}).toTensor();
  EXPECT_EQ(scores.sizes().vec(), (std::vector<int64_t>{5, 9}));
  auto engine = lcio::policy::InferenceEngine::Load(Path("p.pt"), "cpu");
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::vector<float> ours(5 * 9);
  ASSERT_TRUE((*engine)->Score(obs.data_ptr<float>(), 5, ours.data()).ok());
  EXPECT_TRUE(torch::allclose(torch::from_blob(ours.data(), {5, 9}), scores, 1e-5, 1e-5));
}

// The content hash covers the parameters and the metadata, not the archive's
// TorchScript code: an archive whose forward was edited (here, negated; a
// loop would hang the load) is served by its parameters through lcio's own
// forward, never the edited code.
TEST_F(ArtifactIoTest, TheArchivesOwnCodeIsNeverWhatServes) {
  ASSERT_TRUE(policy_testing::WriteTestArtifact(Path("p.pt")).ok());
  std::unordered_map<std::string, std::string> extra{{lcio::policy::kMetadataFile, ""}};
  torch::jit::Module original = torch::jit::load(Path("p.pt"), torch::kCPU, extra);
  torch::jit::Module edited("LcioPolicyMlp");
  std::string forward = "def forward(self, x):\n    return -(self.b0.sum() + x.sum(1, True))";
  for (const auto& p : original.named_parameters(/*recurse=*/false)) {
    edited.register_parameter(p.name, p.value.clone(), /*is_buffer=*/false);
    forward += " * 0.0";  // a different computation over the same parameters
  }
  edited.define(forward + "\n");
  edited.save(Path("edited.pt"),
              {{lcio::policy::kMetadataFile, extra[lcio::policy::kMetadataFile]}});
  auto served = lcio::policy::InferenceEngine::Load(Path("edited.pt"), "cpu");
  ASSERT_TRUE(served.ok()) << served.status();
  auto reference = lcio::policy::InferenceEngine::Load(Path("p.pt"), "cpu");
  ASSERT_TRUE(reference.ok()) << reference.status();
  auto metadata = ReadArtifactMetadata(Path("p.pt"));
  ASSERT_TRUE(metadata.ok());
  torch::Tensor obs = torch::rand({4, metadata->layout.size()});
  std::vector<float> a(4 * 9), b(4 * 9);
  ASSERT_TRUE((*served)->Score(obs.data_ptr<float>(), 4, a.data()).ok());
  ASSERT_TRUE((*reference)->Score(obs.data_ptr<float>(), 4, b.data()).ok());
  EXPECT_EQ(a, b);
  EXPECT_EQ((*served)->metadata().policy_version, metadata->policy_version);
}

TEST_F(ArtifactIoTest, OverwritesAtomically) {
  ASSERT_TRUE(policy_testing::WriteTestArtifact(Path("p.pt")).ok());
  policy_testing::TestArtifactOptions other;
  other.seed = 9;
  auto second = policy_testing::WriteTestArtifact(Path("p.pt"), other);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(ReadArtifactMetadata(Path("p.pt"))->policy_version, second->policy_version);
}

TEST_F(ArtifactIoTest, SaveRejectsInconsistentNetworks) {
  auto metadata = policy_testing::TestMetadata();
  ASSERT_TRUE(metadata.ok());
  auto expect_rejected = [&](const Network& network, const std::string& needle) {
    absl::Status status = SaveArtifact(Path("bad.pt"), network, *metadata);
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find(needle), std::string::npos) << status;
    EXPECT_FALSE(fs::exists(Path("bad.pt")));
  };
  const Network good = MakeNetwork(*metadata);
  ASSERT_TRUE(SaveArtifact(Path("good.pt"), good, *metadata).ok());
  EXPECT_FALSE(lcio::policy::ParseActivation("sigmoid").ok());
  const int in = metadata->layout.size();
  Network bad = good;
  bad.sizes[0] = in + 1;
  bad.weights[0].resize(static_cast<size_t>(in + 1) * 8);
  expect_rejected(bad, "network input size");
  bad = good;
  bad.sizes[2] = 5;
  bad.weights[1].resize(8 * 5);
  bad.biases[1].resize(5);
  expect_rejected(bad, "network output size 5");
  bad = good;
  bad.weights[1].resize(7 * good.sizes[2]);
  expect_rejected(bad, "layer 1: ");
  bad = good;
  bad.biases[0].resize(3);
  expect_rejected(bad, "3 biases");
  bad = good;
  bad.weights[0][0] = std::numeric_limits<float>::quiet_NaN();
  expect_rejected(bad, "NaN");
  bad = good;
  bad.biases.pop_back();
  expect_rejected(bad, "bias vectors");
  expect_rejected(Network{}, "no layers");
  ArtifactMetadata wrong = *metadata;
  wrong.tasks.clear();
  EXPECT_FALSE(SaveArtifact(Path("bad.pt"), good, wrong).ok());
  EXPECT_FALSE(SaveArtifact((dir_ / "missing_dir" / "p.pt").string(), good, *metadata).ok());
}

TEST_F(ArtifactIoTest, MissingEmptyAndRandomFilesFail) {
  ExpectLoadFails(Path("absent.pt"), "cannot read");
  WriteBytes(Path("empty.pt"), "");
  ExpectLoadFails(Path("empty.pt"), "empty");
  std::mt19937 rng(7);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  WriteBytes(Path("noise.pt"), noise);
  ExpectLoadFails(Path("noise.pt"), "zip");
  WriteBytes(Path("zipnoise.pt"), "PK\x03\x04" + noise);
  ExpectLoadFails(Path("zipnoise.pt"), "TorchScript archive");
  // A TorchScript module that is not an lcio policy.
  torch::jit::Module foreign("Foreign");
  foreign.define("def forward(self, x):\n    return x\n");
  foreign.save(Path("foreign.pt"));
  ExpectLoadFails(Path("foreign.pt"), "not an lcio policy");
}

// LibTorch allocates what a zip entry declares: a 735 KB artifact whose
// metadata deflated to 600 MiB took 1.8 GB and loaded. The central directory
// is read first; declared sizes past the rules are refused unextracted.
TEST_F(ArtifactIoTest, ZipEntriesThatDeclareTooMuchAreRefusedBeforeExtraction) {
  ASSERT_TRUE(policy_testing::WriteTestArtifact(Path("p.pt")).ok());
  const std::string bytes = ReadBytes(Path("p.pt"));
  // The central directory entry of `suffix`: where its uncompressed size is.
  auto size_field = [&bytes](const std::string& suffix) {
    for (size_t at = bytes.find("PK\x01\x02"); at != std::string::npos;
         at = bytes.find("PK\x01\x02", at + 4)) {
      const size_t name_bytes = static_cast<unsigned char>(bytes[at + 28]) |
                                static_cast<unsigned char>(bytes[at + 29]) << 8;
      const std::string name = bytes.substr(at + 46, name_bytes);
      if (name.size() >= suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        return at + 24;
    }
    return std::string::npos;
  };
  auto declare = [&](const std::string& suffix, uint32_t size) {
    std::string patched = bytes;
    const size_t at = size_field(suffix);
    EXPECT_NE(at, std::string::npos) << suffix;
    for (int k = 0; k < 4; ++k) patched[at + k] = static_cast<char>(size >> (8 * k) & 0xff);
    return patched;
  };
  const std::pair<std::string, std::string> cases[] = {
      {declare("code/__torch__.py", 600u << 20), "expands more than 64 times"},
      {declare("lcio_metadata.json", 100u << 20), "metadata is at most"},
      {declare("lcio_metadata.json", 0xffffffffu), "zip64"},
  };
  for (const auto& [patched, rule] : cases) {
    WriteBytes(Path("bomb.pt"), patched);
    ExpectLoadFails(Path("bomb.pt"), rule);
  }
  // LibTorch's reader follows the zip64 end record: one that points at
  // another directory than the classic record (a bomb the check would not
  // see) is refused.
  std::string two_directories = bytes;
  const size_t end64 = two_directories.rfind("PK\x06\x06");
  ASSERT_NE(end64, std::string::npos) << "LibTorch wrote no zip64 end record";
  two_directories[end64 + 48] = static_cast<char>(two_directories[end64 + 48] - 46);
  WriteBytes(Path("two.pt"), two_directories);
  ExpectLoadFails(Path("two.pt"), "point at different central directories");
}

TEST_F(ArtifactIoTest, TruncatedFilesFail) {
  ASSERT_TRUE(policy_testing::WriteTestArtifact(Path("p.pt")).ok());
  const std::string bytes = ReadBytes(Path("p.pt"));
  for (size_t keep : {size_t{3}, size_t{100}, bytes.size() / 4, bytes.size() / 2,
                      bytes.size() * 9 / 10, bytes.size() - 22, bytes.size() - 1}) {
    SCOPED_TRACE(keep);
    WriteBytes(Path("cut.pt"), bytes.substr(0, keep));
    ExpectLoadFails(Path("cut.pt"), "artifact");
  }
}

TEST_F(ArtifactIoTest, FlippedBytesNeverYieldADifferentPolicy) {
  ASSERT_TRUE(policy_testing::WriteTestArtifact(Path("p.pt")).ok());
  auto original = lcio::policy::InferenceEngine::Load(Path("p.pt"), "cpu");
  ASSERT_TRUE(original.ok());
  const int d = (*original)->observation_size(), a = (*original)->num_actions();
  std::vector<float> obs(4 * d);
  for (size_t i = 0; i < obs.size(); ++i) obs[i] = static_cast<float>((i * 37) % 11) / 11.0f;
  std::vector<float> expected(4 * a), got(4 * a);
  ASSERT_TRUE((*original)->Score(obs.data(), 4, expected.data()).ok());
  const std::string bytes = ReadBytes(Path("p.pt"));
  int rejected = 0, accepted = 0;
  constexpr int kFlips = 60;
  for (int k = 0; k < kFlips; ++k) {
    const size_t at = (bytes.size() - 1) * k / (kFlips - 1);
    std::string corrupt = bytes;
    corrupt[at] = static_cast<char>(corrupt[at] ^ 0x5a);
    WriteBytes(Path("flip.pt"), corrupt);
    auto engine = lcio::policy::InferenceEngine::Load(Path("flip.pt"), "cpu");
    if (!engine.ok()) {
      ++rejected;
      EXPECT_NE(engine.status().message().find(Path("flip.pt")), std::string::npos)
          << engine.status();
      continue;
    }
    // A flip that loads (zip padding, an unused header field) must not have
    // changed the policy.
    ++accepted;
    ASSERT_TRUE((*engine)->Score(obs.data(), 4, got.data()).ok());
    EXPECT_EQ(got, expected) << "flip at byte " << at << " changed the scores";
    EXPECT_EQ((*engine)->metadata().policy_version, (*original)->metadata().policy_version);
  }
  std::printf("byte flips: %d rejected, %d harmless\n", rejected, accepted);
  EXPECT_GT(rejected, kFlips / 2);
}

TEST_F(ArtifactIoTest, IncompatibleArtifactsFailNamingTheRule) {
  ASSERT_TRUE(policy_testing::WriteTestArtifact(Path("p.pt")).ok());
  EditMetadata(Path("p.pt"), Path("v2.pt"), [](auto& j) { j["format_version"] = 3; });
  ExpectLoadFails(Path("v2.pt"), "format_version = 3");
  EditMetadata(Path("p.pt"), Path("layout.pt"),
               [](auto& j) { j["observation"]["layout_version"] = 99; });
  ExpectLoadFails(Path("layout.pt"), "layout_version = 99");
  // The observation no longer matches the network's input.
  EditMetadata(Path("p.pt"), Path("obs.pt"), [](auto& j) {
    j["observation"]["budget_aware"] = false;
    j["observation"]["size"] = j["observation"]["size"].template get<int>() - 2;
  });
  ExpectLoadFails(Path("obs.pt"), "network input size");
  // Consistent metadata for 2 views, but the network still scores 8 actions.
  EditMetadata(Path("p.pt"), Path("actions.pt"), [](auto& j) {
    auto table = lcio::env::ActionTable::Create(2);
    lcio::env::ObservationLayout layout;
    layout.num_views = 2;
    j["observation"]["num_views"] = 2;
    j["observation"]["size"] = layout.size();
    j["view_names"] = {"view0", "view1"};
    j["actions"]["num_actions"] = table->size();
    j["actions"]["views"] = nlohmann::json::array();
    for (int a = 0; a < table->size(); ++a) j["actions"]["views"].push_back(table->views(a));
    j["network"]["layer_sizes"].front() = layout.size();
    j["network"]["layer_sizes"].back() = table->size();
  });
  ExpectLoadFails(Path("actions.pt"), "has shape");
  // Metadata that is valid on its own but no longer what was saved.
  EditMetadata(Path("p.pt"), Path("edited.pt"), [](auto& j) { j["data_sha256"] = "tampered"; });
  ExpectLoadFails(Path("edited.pt"), "content hash mismatch");
  EditMetadata(Path("p.pt"), Path("nometa.pt"), [](auto& j) { j = nlohmann::json::array(); });
  ExpectLoadFails(Path("nometa.pt"), "must be a JSON object");
}

}  // namespace
