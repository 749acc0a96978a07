//! Where the Python virtualenvs that `scripts/setup.sh` installs for the tests are:
//! the directory an environment variable names, else one of the cargo
//! target directory's.

use std::path::PathBuf;

/// `$var` if set, else `<target dir>/<name>`.
pub fn locate(var: &str, name: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(var) {
        return v.into();
    }
    // The test executable is target/<profile>/deps/<name>.
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe.ancestors().nth(3).expect("target directory").to_path_buf();
    target.join(name)
}
