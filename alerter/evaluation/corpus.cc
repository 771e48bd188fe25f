#include "alerter/evaluation/corpus.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace cybersyn::alerter::evaluation {
namespace {

namespace fs = std::filesystem;

struct FileJob {
  std::string path;      // to read
  std::string relative;  // names its series
  std::string output;    // verdicts go here; empty for nowhere
  bool in_directory = false;
};

std::string SeriesBaseName(const std::string& relative, const std::string& strip_prefix) {
  if (strip_prefix.empty()) return relative;
  const size_t slash = relative.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  if (relative.compare(base, strip_prefix.size(), strip_prefix) != 0) return relative;
  return relative.substr(0, base) + relative.substr(base + strip_prefix.size());
}

absl::StatusOr<std::vector<FileJob>> ListJobs(const CorpusOptions& o) {
  std::vector<FileJob> jobs;
  std::error_code ec;
  if (o.input == "-" || !fs::is_directory(o.input, ec)) {
    if (o.input != "-" && !fs::exists(o.input, ec)) {
      return absl::NotFoundError(absl::StrCat("input ", o.input, " does not exist"));
    }
    jobs.push_back({o.input, o.input == "-" ? "<stdin>" : o.input, o.output});
    return jobs;
  }
  if (o.output == "-") {
    return absl::InvalidArgumentError(
        absl::StrCat("input ", o.input, " is a directory: --output must be a directory too"));
  }
  for (auto it = fs::recursive_directory_iterator(o.input, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != ".csv") continue;
    const std::string rel = fs::relative(it->path(), o.input, ec).generic_string();
    jobs.push_back({it->path().string(), rel,
                    o.output.empty() ? std::string() : (fs::path(o.output) / rel).string(), true});
  }
  if (ec) return absl::NotFoundError(absl::StrCat("listing ", o.input, ": ", ec.message()));
  if (jobs.empty()) return absl::NotFoundError(absl::StrCat("no *.csv file under ", o.input));
  std::sort(jobs.begin(), jobs.end(),
            [](const FileJob& a, const FileJob& b) { return a.relative < b.relative; });
  return jobs;
}

absl::StatusOr<std::vector<SeriesRun>> RunFile(const FileJob& job, const CorpusOptions& o,
                                               const DetectorFactory& make) {
  ASSIGN_OR_RETURN(const std::string text, ReadInputFile(job.path));
  const std::string shown = job.path == "-" ? "<stdin>" : job.path;
  auto parsed = ParseSeriesCsv(text, shown, {o.scores_column, o.allow_unordered});
  if (!parsed.ok()) {
    // A results directory's other files (per-file totals) lack the scores column: skipped.
    const bool skip = parsed.status().code() == absl::StatusCode::kNotFound && job.in_directory;
    if (skip) return std::vector<SeriesRun>();
    return parsed.status();
  }
  const SeriesTable& table = *parsed;
  const std::string base = SeriesBaseName(job.relative, o.strip_prefix);
  std::vector<SeriesRun> runs(table.columns.size());
  std::vector<ColumnVerdicts> verdicts;
  for (size_t c = 0; c < table.columns.size(); ++c) {
    SeriesRun& run = runs[c];
    run.name = table.columns.size() == 1 ? base : absl::StrCat(base, ":", table.columns[c]);
    run.time_ms = table.time_ms;
    run.stats.rows = static_cast<int64_t>(table.time_ms.size());
    run.stats.unordered = table.unordered;
    if (!o.scores_column.empty()) {
      run.from_detector = false;
      run.score = table.values[c];
      for (size_t i = 0; i < run.score.size(); ++i) {
        if (std::isnan(run.score[i])) {
          return absl::InvalidArgumentError(
              absl::StrCat(shown, ": ", o.scores_column, ": empty score on data row ", i + 1));
        }
      }
      continue;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Detector> detector, make());
    verdicts.push_back(RunDetector(table, c, *detector));
    run.score = verdicts.back().score;
    run.signal = verdicts.back().signal;
    run.stats = verdicts.back().stats;
    run.stats.unordered = table.unordered;
  }
  if (!job.output.empty() && o.scores_column.empty()) {
    std::string out;
    AppendVerdictCsv(table, verdicts, &out);
    if (job.output != "-") {
      std::error_code ec;
      const fs::path parent = fs::path(job.output).parent_path();
      if (!parent.empty()) fs::create_directories(parent, ec);
      if (ec) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot create ", parent.string(), ": ", ec.message()));
      }
    }
    RETURN_IF_ERROR(WriteOutputFile(job.output, out));
  }
  return runs;
}

}  // namespace

absl::StatusOr<CorpusRun> RunCorpus(const CorpusOptions& options, const DetectorFactory& make) {
  ASSIGN_OR_RETURN(const std::vector<FileJob> jobs, ListJobs(options));
  std::vector<absl::StatusOr<std::vector<SeriesRun>>> results(jobs.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < jobs.size();) {
      results[i] = RunFile(jobs[i], options, make);
    }
  };
  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp<int>(threads, 1, static_cast<int>(jobs.size()));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();

  CorpusRun run;
  std::vector<std::string> errors;
  absl::StatusCode code = absl::StatusCode::kOk;
  for (size_t i = 0; i < results.size(); ++i) {
    auto& r = results[i];
    if (r.ok() && r->empty()) {
      run.skipped.push_back(jobs[i].relative);
      continue;
    }
    if (!r.ok()) {
      if (code == absl::StatusCode::kOk) code = r.status().code();
      errors.emplace_back(r.status().message());
      continue;
    }
    for (SeriesRun& s : *r) run.series.push_back(std::move(s));
  }
  if (!errors.empty()) {
    const size_t shown = std::min<size_t>(errors.size(), 5);
    std::string msg = absl::StrJoin(errors.begin(), errors.begin() + shown, "\n");
    if (errors.size() > shown) absl::StrAppend(&msg, "\n(", errors.size() - shown, " more)");
    if (jobs.size() > 1) {
      msg = absl::StrCat(errors.size(), " of ", jobs.size(), " files failed:\n", msg);
    }
    return absl::Status(code, msg);
  }
  if (run.series.empty()) {
    return absl::NotFoundError(absl::StrCat("no file under ", options.input, " has a column '",
                                            options.scores_column, "'"));
  }
  return run;
}

}  // namespace cybersyn::alerter::evaluation
