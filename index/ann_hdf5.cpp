// ann-benchmarks HDF5 reader. Built only when CMake finds HDF5 (WAYPOINT_HAVE_HDF5).
#include "index/error.h"
#include "index/vector_io.h"

#ifdef WAYPOINT_HAVE_HDF5
#include <hdf5.h>
#endif

namespace wp::index {

#ifdef WAYPOINT_HAVE_HDF5
namespace {
/// Closes an HDF5 handle on scope exit.
struct H5Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5Handle() {
    if (id >= 0) close(id);
  }
};

template <typename T>
BasicMatrix<T> read_2d(hid_t file, const std::string& path, const char* name, hid_t mem_type,
                       bool required) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    WP_THROW_IF_NOT(!required, "'", path, "': HDF5 dataset '", name, "' is missing");
    return {};
  }
  H5Handle ds{H5Dopen2(file, name, H5P_DEFAULT), H5Dclose};
  WP_THROW_IF_NOT(ds.id >= 0, "'", path, "': cannot open dataset '", name, "'");
  H5Handle space{H5Dget_space(ds.id), H5Sclose};
  WP_THROW_IF_NOT(H5Sget_simple_extent_ndims(space.id) == 2, "'", path, "': dataset '", name,
                  "' is not two-dimensional");
  hsize_t dims[2];
  H5Sget_simple_extent_dims(space.id, dims, nullptr);
  WP_THROW_IF_NOT(dims[1] >= 1 && dims[1] <= 65536, "'", path, "': dataset '", name,
                  "' has dimension ", dims[1]);
  BasicMatrix<T> m(dims[0], dims[1]);
  WP_THROW_IF_NOT(H5Dread(ds.id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data.data()) >= 0, "'",
                  path, "': cannot read dataset '", name, "'");
  return m;
}
}  // namespace

bool hdf5_supported() {
  return true;
}

AnnHdf5 read_ann_hdf5(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become exceptions, not stderr noise
  H5Handle file{H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  WP_THROW_IF_NOT(file.id >= 0, "cannot open '", path, "' as an HDF5 file");
  AnnHdf5 out;
  out.train = read_2d<float>(file.id, path, "train", H5T_NATIVE_FLOAT, true);
  out.test = read_2d<float>(file.id, path, "test", H5T_NATIVE_FLOAT, true);
  out.neighbors = read_2d<int32_t>(file.id, path, "neighbors", H5T_NATIVE_INT32, true);
  out.distances = read_2d<float>(file.id, path, "distances", H5T_NATIVE_FLOAT, false);
  WP_THROW_IF_NOT(out.train.d == out.test.d, "'", path, "': train has dimension ", out.train.d,
                  " but test has ", out.test.d);
  WP_THROW_IF_NOT(out.neighbors.n == out.test.n, "'", path, "': ", out.neighbors.n,
                  " neighbour rows for ", out.test.n, " queries");
  if (H5Aexists(file.id, "distance") > 0) {
    H5Handle attr{H5Aopen(file.id, "distance", H5P_DEFAULT), H5Aclose};
    H5Handle type{H5Aget_type(attr.id), H5Tclose};
    if (H5Tget_class(type.id) == H5T_STRING) {
      if (H5Tis_variable_str(type.id) > 0) {
        char* s = nullptr;
        H5Handle mem{H5Tget_native_type(type.id, H5T_DIR_ASCEND), H5Tclose};
        if (H5Aread(attr.id, mem.id, &s) >= 0 && s) {
          out.distance = s;
          H5free_memory(s);
        }
      } else {
        std::string s(H5Tget_size(type.id), '\0');
        if (H5Aread(attr.id, type.id, s.data()) >= 0) out.distance = s.c_str();
      }
    }
  }
  return out;
}
#else
bool hdf5_supported() {
  return false;
}

AnnHdf5 read_ann_hdf5(const std::string& path) {
  throw UserError("'" + path +
                  "': this build has no HDF5 support (install libhdf5-dev and rebuild)");
}
#endif

}  // namespace wp::index
