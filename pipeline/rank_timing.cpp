#include "pipeline/rank_timing.h"

namespace cnp::pipeline {

RankTiming& this_rank_timing() {
  static RankTiming timing;
  return timing;
}

}  // namespace cnp::pipeline
