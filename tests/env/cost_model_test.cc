#include <cmath>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "lcio/env/profiles.h"

namespace lcio::env {
namespace {

// The reference formula, written out: time = (2 * 3.8e9 / 1024 * 2048) /
// (GF_peak * 1e9); money = P_max * time * 0.1668 / 3.6e6.
struct Expected {
  const char* name;
  double time_s, money_usd;
};
// Values computed by hand (Python float arithmetic) from the formula above.
constexpr Expected kDevices[] = {
    {"Raspberry Pi-4B", 1.125925925925926, 4.1734320987654325e-07},
    {"Raspberry Pi-5", 0.4840764331210191, 2.691464968152866e-07},
    {"Jetson Nano", 0.03220338983050847, 1.492090395480226e-08},
    {"Jetson TX2", 0.011428571428571429, 7.942857142857144e-09},
    {"Jetson Xavier NX", 0.0007238095238095238, 6.707301587301588e-10},
    {"Jetson Orin NX", 0.000152, 1.760666666666667e-10},
    {"Jetson AGX Orin", 5.527272727272727e-05, 1.5365818181818184e-10},
    {"iPhone 15 Pro", 0.0004342857142857143, 3.0182857142857144e-10},
};

TEST(CostModelTest, LocalCostOfEveryBuiltInDeviceFollowsTheReferenceFormula) {
  const ProfileCatalog catalog = ProfileCatalog::BuiltIn();
  ASSERT_EQ(catalog.devices.size(), 8u);
  for (const Expected& e : kDevices) {
    auto device = catalog.Device(e.name);
    ASSERT_TRUE(device.ok()) << device.status();
    EXPECT_NEAR(LocalTimeSeconds(*device, catalog.local_llm), e.time_s, 1e-15 * e.time_s) << e.name;
    EXPECT_NEAR(LocalMoneyUsd(*device, catalog.local_llm, catalog.electricity_usd_per_kwh),
                e.money_usd, 1e-12 * e.money_usd)
        << e.name;
  }
}

TEST(CostModelTest, NormalisedCostsForJetsonTx2OverWiredMatchHandComputedValues) {
  auto actions = ActionTable::Create(3);
  ASSERT_TRUE(actions.ok());
  auto model = CostModel::Create(ProfileCatalog::BuiltIn(), "Jetson TX2", "Wired", *actions);
  ASSERT_TRUE(model.ok()) << model.status();
  // Slots [local, cloud 0 views, 1, 2, 3 views].
  const double time[] = {0.0, 0.9251421822461712, 0.6814127825584586, 0.8943546613704707, 1.0};
  const double money[] = {0.0, 0.03581815362875253, 0.3654967076192246, 0.6907892941508433, 1.0};
  const int slot_of_action[] = {0, 1, 2, 2, 2, 3, 3, 3, 4};
  ASSERT_EQ(model->num_actions(), 9);
  for (int a = 0; a < 9; ++a) {
    EXPECT_NEAR(model->norm_time(a), time[slot_of_action[a]], 1e-15) << a;
    EXPECT_NEAR(model->norm_money(a), money[slot_of_action[a]], 1e-15) << a;
  }
  EXPECT_DOUBLE_EQ(model->time_s(8), 6.98211);
  EXPECT_DOUBLE_EQ(model->money_usd(1), 0.00049);
  EXPECT_DOUBLE_EQ(model->time_s(0), 0.011428571428571429);
}

TEST(CostModelTest, UnknownNamesListTheKnownOnes) {
  auto actions = ActionTable::Create(3);
  auto model = CostModel::Create(ProfileCatalog::BuiltIn(), "Toaster", "Wired", *actions);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(model.status().message().find("Toaster"), std::string::npos);
  EXPECT_NE(model.status().message().find("Jetson TX2"), std::string::npos);
  auto net = CostModel::Create(ProfileCatalog::BuiltIn(), "Jetson TX2", "Carrier pigeon", *actions);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("4G"), std::string::npos);
}

// An unknown name listed every known one (a megabyte for 10000 devices,
// before catalogs were bounded; 64 names of 250 bytes are 16 kB), and a long
// value was quoted whole.
TEST(CostModelTest, MessagesStayShortWhateverTheFileHolds) {
  ProfileCatalog catalog = ProfileCatalog::BuiltIn();
  std::string devices;
  const std::string padding(230, 'p');
  for (int i = 0; i < 56; ++i)
    absl::StrAppend(&devices, i ? "," : "", "{\"name\": \"Device number ", i, padding,
                    "\", \"peak_gflops\": 100, \"max_power_w\": 10}");
  ASSERT_TRUE(catalog.MergeJson(absl::StrCat("{\"devices\": [", devices, "]}"), "many").ok());
  const absl::Status unknown = catalog.Device("nope").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_LT(unknown.message().size(), 2048u);
  EXPECT_TRUE(absl::StrContains(unknown.message(), " more")) << unknown.message();
  const std::string long_value(1 << 20, 'X');
  ProfileCatalog other = ProfileCatalog::BuiltIn();
  for (const std::string& file :
       {absl::StrCat("{\"devices\": [{\"name\": \"D\", \"peak_gflops\": \"", long_value,
                     "\", \"max_power_w\": 10}]}"),
        absl::StrCat("{\"", long_value, "\": 1}")}) {
    const absl::Status s = other.MergeJson(file, "long");
    EXPECT_FALSE(s.ok());
    EXPECT_LT(s.message().size(), 1024u) << s.message().substr(0, 1200);
  }
}

TEST(CostModelTest, ProfilesFileAddsDevicesNetworksLlmAndPrice) {
  ProfileCatalog catalog = ProfileCatalog::BuiltIn();
  ASSERT_TRUE(catalog
                  .MergeJson(R"({
    "devices": [{"name": "Pixel 9", "peak_gflops": 2000, "max_power_w": 8}],
    "networks": [{"name": "Satellite", "cloud_time_s": [2, 20, 30, 40, 50]}],
    "local_llm": {"name": "tiny-1B", "parameters": 1e9, "base_tokens": 1024, "total_tokens": 2048},
    "cloud_llm": {"name": "big", "money_usd": [0.001, 0.002, 0.003, 0.004, 0.005]},
    "electricity_usd_per_kwh": 0.30})",
                             "test")
                  .ok());
  auto actions = ActionTable::Create(4);
  auto model = CostModel::Create(catalog, "Pixel 9", "Satellite", *actions);
  ASSERT_TRUE(model.ok()) << model.status();
  const double t = 2 * 1e9 / 1024 * 2048 / (2000 * 1e9);
  EXPECT_DOUBLE_EQ(model->local_time_s(), t);
  EXPECT_DOUBLE_EQ(model->local_money_usd(), 8 * t * (0.30 / 3.6e6));
}

TEST(CostModelTest, TooFewCostEntriesForTheViewCountIsAnError) {
  auto actions = ActionTable::Create(4);
  auto model = CostModel::Create(ProfileCatalog::BuiltIn(), "Jetson TX2", "Wired", *actions);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("cloud_time_s"), std::string::npos);
}

TEST(CostModelTest, BadProfilesFileChangesNothingAndNamesTheField) {
  ProfileCatalog catalog = ProfileCatalog::BuiltIn();
  auto s = catalog.MergeJson(
      R"({"devices": [{"name": "Ok", "peak_gflops": 1, "max_power_w": 1},
                      {"name": "Bad", "peak_gflops": -5, "max_power_w": 1}]})",
      "profiles.json");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("devices[1]"), std::string::npos) << s;
  EXPECT_NE(s.message().find("peak_gflops"), std::string::npos) << s;
  EXPECT_FALSE(catalog.Device("Ok").ok());
  EXPECT_FALSE(catalog.MergeJson("{\"colour\": 1}", "x").ok());
  // A misspelt field inside an entry, and a name given twice in one file.
  auto misspelt = catalog.MergeJson(
      R"({"devices": [{"name": "Ok", "peak_gflop": 1, "peak_gflops": 1, "max_power_w": 1}]})",
      "profiles.json");
  EXPECT_NE(misspelt.message().find("devices[0]: unknown field \"peak_gflop\""), std::string::npos)
      << misspelt;
  auto twice = catalog.MergeJson(R"({"networks": [{"name": "Lab", "cloud_time_s": [1, 2, 3, 4]},
                                                  {"name": "Lab", "cloud_time_s": [9, 9, 9, 9]}]})",
                                 "profiles.json");
  EXPECT_NE(twice.message().find("networks[1]: name \"Lab\" is given twice"), std::string::npos)
      << twice;
  auto llm = catalog.MergeJson(
      R"({"cloud_llm": {"name": "x", "money_usd": [1, 1, 1, 1], "tier": 2}})", "profiles.json");
  EXPECT_NE(llm.message().find("cloud_llm: unknown field \"tier\""), std::string::npos) << llm;
  EXPECT_FALSE(catalog.Network("Lab").ok());
  EXPECT_FALSE(catalog.MergeJson("not json", "x").ok());
  // The decision log's readers take names up to 256 bytes: a longer one was
  // served, and every decision made with it was unreadable.
  auto long_name =
      catalog.MergeJson(absl::StrCat(R"({"networks": [{"name": ")", std::string(300, 'N'),
                                     R"(", "cloud_time_s": [1, 2, 3, 4]}]})"),
                        "profiles.json");
  EXPECT_NE(long_name.message().find("networks[0]: name \"NNN"), std::string::npos) << long_name;
  EXPECT_NE(long_name.message().find("is 300 bytes: at most 256"), std::string::npos) << long_name;
}

// Valid fields can still make a turn cost more than any logged turn may (a
// device of 1e-308 GFLOPS answers in ~1e300 s): refused when the cost model is
// built, naming the pair and the action, since sums would overflow to inf.
TEST(CostModelTest, ACostBeyondATurnsBoundIsRefused) {
  ProfileCatalog catalog = ProfileCatalog::BuiltIn();
  ASSERT_TRUE(catalog
                  .MergeJson(R"({"devices": [{"name": "Slow", "peak_gflops": 1e-308,
                                             "max_power_w": 1}]})",
                             "profiles.json")
                  .ok());
  auto actions = ActionTable::Create(3);
  auto slow = CostModel::Create(catalog, "Slow", "Wired", *actions);
  ASSERT_FALSE(slow.ok());
  EXPECT_NE(slow.status().message().find("device \"Slow\" on network \"Wired\": the local answer "
                                         "takes"),
            std::string::npos)
      << slow.status();
  EXPECT_NE(slow.status().message().find("takes inf s: must be in [0, 1e+06]"), std::string::npos)
      << slow.status();
  ASSERT_TRUE(
      catalog
          .MergeJson(
              R"({"cloud_llm": {"name": "Dear", "money_usd": [1e308, 1e308, 1e308, 1e308]}})",
              "profiles.json")
          .ok());
  auto dear = CostModel::Create(catalog, "Jetson TX2", "Wired", *actions);
  ASSERT_FALSE(dear.ok());
  EXPECT_NE(dear.status().message().find("a cloud call with 0 views costs 1e+308 USD"),
            std::string::npos)
      << dear.status();
  EXPECT_TRUE(CostModel::Create(ProfileCatalog::BuiltIn(), "Raspberry Pi-4B", "4G", *actions).ok());
}

// A deep value inside a profile used to crash the reader (its error message
// printed the value recursively).
TEST(CostModelTest, DeeplyNestedProfilesFileIsRefusedByTheDepthLimit) {
  ProfileCatalog catalog = ProfileCatalog::BuiltIn();
  const std::string deep = R"({"networks": [{"name": "Deep", "cloud_time_s": )" +
                           std::string(100000, '[') + std::string(100000, ']') + "}]}";
  const absl::Status s = catalog.MergeJson(deep, "--profiles");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("--profiles: JSON nests arrays/objects more than 64 levels deep"),
            std::string::npos)
      << s;
}

// Every device x network pair gets a cost model in the server: 1000 x 1000
// took 5 s and a GB to load from a 300 kB file. At most 64 of each.
TEST(CostModelTest, ACatalogOfMoreThan64DevicesOrNetworksIsRefused) {
  const auto file = [](const char* list, int count, const std::string& entry) {
    std::string text = absl::StrCat(R"({")", list, R"(": [)");
    for (int i = 0; i < count; ++i)
      absl::StrAppend(&text, i > 0 ? "," : "", absl::StrFormat(entry.c_str(), i));
    return text + "]}";
  };
  const std::string device = R"({"name": "d%d", "peak_gflops": 100, "max_power_w": 10})";
  const std::string network = R"({"name": "n%d", "cloud_time_s": [1, 2, 3, 4]})";
  // Up to the bound with the built-in ones (8 devices, 4 networks): fine.
  ProfileCatalog at_most = ProfileCatalog::BuiltIn();
  ASSERT_TRUE(at_most.MergeJson(file("devices", 56, device), "p.json").ok());
  ASSERT_TRUE(at_most.MergeJson(file("networks", 60, network), "p.json").ok());
  EXPECT_EQ(at_most.devices.size(), ProfileCatalog::kMaxDevices);
  EXPECT_EQ(at_most.networks.size(), ProfileCatalog::kMaxNetworks);
  for (const auto& [list, count, entry, what] :
       {std::tuple{"devices", 57, device, "more than 64 devices"},
        std::tuple{"devices", 5000, device, "more than 64 devices"},
        std::tuple{"networks", 61, network, "more than 64 networks"}}) {
    ProfileCatalog catalog = ProfileCatalog::BuiltIn();
    const absl::Status s = catalog.MergeJson(file(list, count, entry), "p.json");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), what)) << s;
    EXPECT_EQ(catalog.devices.size(), 8u);  // all or nothing
    EXPECT_EQ(catalog.networks.size(), 4u);
  }
}

}  // namespace
}  // namespace lcio::env
