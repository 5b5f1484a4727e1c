// Sweep compute throughput: samples/s of the per-rank loop the sweep runs (batch
// producer normalising crops on its thread while the model predicts, then the MPI
// gather to rank 0), per variant, flip off and on. Random weights and random crops,
// so image decoding is not included (bench_data measures that).
// Run: bench_sweep [--samples N] [--batch B] [--variants XS,S]   (1 rank)
//      mpirun -np 2 bench_sweep ...                               (2 ranks)
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "data/h36m.h"
#include "data/preprocess.h"
#include "model/architecture.h"
#include "model/pose_model.h"
#include "pipeline/batch_producer.h"
#include "pipeline/gather.h"
#include "pipeline/runtime.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);

  CLI::App app{"bench_sweep: samples/s of the sweep's compute loop"};
  int64_t samples = 32;
  int batch = 8;
  int threads = 0;
  std::vector<std::string> variants = {"XS", "S", "M", "L"};
  app.add_option("--samples", samples, "Samples per pass (split over ranks)");
  app.add_option("--batch", batch, "Batch size per rank");
  app.add_option("--threads", threads, "Threads per rank (0: cores / ranks)");
  app.add_option("--variants", variants, "Variants")->delimiter(',');
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    MPI_Finalize();
    return code;
  }
  threads = cnp::pipeline::resolve_threads_per_rank(
      threads, nullptr, static_cast<int>(std::thread::hardware_concurrency()), ranks);

  const auto shard = cnp::pipeline::shard_range(samples, rank, ranks);
  std::mt19937 rng(1234 + rank);
  std::vector<uint8_t> crops(static_cast<size_t>(shard.size()) * cnp::data::kCropBytes);
  for (auto& v : crops) v = static_cast<uint8_t>(rng() & 255);
  auto gather = cnp::pipeline::make_mpi_gather(MPI_COMM_WORLD);
  const auto registry = cnp::model::VariantRegistry::with_builtins();
  constexpr int kCoords = cnp::data::kNumJoints * 3;
  if (rank == 0) {
    std::printf("bench_sweep: %d rank(s), %d thread(s) per rank, batch %d, %lld samples per pass\n",
                ranks, threads, batch, static_cast<long long>(samples));
  }
  for (const auto& name : variants) {
    cnp::model::ModelOptions options;
    options.threads = threads;
    options.flip_pairs = cnp::data::flip_pairs();
    auto net = cnp::model::PoseModel::random(registry.get(name).arch, 7, options);
    for (bool flip : {false, true}) {
      std::vector<float> plain(static_cast<size_t>(shard.size()) * kCoords);
      std::vector<float> flipped(flip ? plain.size() : 0);
      std::vector<float> all(rank == 0 ? static_cast<size_t>(samples) * kCoords : 0);
      std::vector<int64_t> counts(ranks);
      for (int r = 0; r < ranks; ++r)
        counts[r] = cnp::pipeline::shard_range(samples, r, ranks).size() * kCoords;
      MPI_Barrier(MPI_COMM_WORLD);
      const auto start = std::chrono::steady_clock::now();
      {
        cnp::pipeline::BatchProducer producer(
            shard.size(), batch, false,
            [&](int64_t i, uint8_t* crop) {
              std::copy_n(crops.data() + i * cnp::data::kCropBytes, cnp::data::kCropBytes, crop);
            },
            [](int64_t i) { return "sample " + std::to_string(i); });
        cnp::pipeline::PreparedBatch prepared;
        while (producer.next(prepared)) {
          net->predict(prepared.input.data(), prepared.count,
                       plain.data() + prepared.first * kCoords,
                       flip ? flipped.data() + prepared.first * kCoords : nullptr);
        }
      }
      gather->gather(plain.data(), counts, all.data());
      if (flip) gather->gather(flipped.data(), counts, all.data());
      MPI_Barrier(MPI_COMM_WORLD);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (rank == 0) {
        std::printf("%-3s flip=%-5s %8.2f samples/s  (%.2f s for %lld samples)\n", name.c_str(),
                    flip ? "true" : "false", samples / seconds, seconds,
                    static_cast<long long>(samples));
        std::fflush(stdout);
      }
    }
  }
  MPI_Finalize();
  return 0;
}
