// Image resampling for preprocessing (PIL-compatible), independent of the SIMD kernel table.
#pragma once
