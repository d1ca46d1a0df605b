# Python bindings: the pytest suite in tests/python runs as the ctest test `python_bindings`
# against the freshly built libvmcore.so; `python_bindings_scripted` runs the binding-mechanics
# tests (events, callbacks, asyncio, leaks) against a copy of the library with a scripted
# backend (tests/python/shim/), so they run on any host without root or /dev/kvm.
# `linux_emu` (below) boots Debian's kernel on emu with the same bindings.
set(VMCORE_PYTHON /usr/bin/python3 CACHE FILEPATH "Python interpreter that runs the binding tests (needs pytest)")

if(EXISTS ${VMCORE_PYTHON})
  # A copy of the library plus one exported test hook (vmcore_pyshim_domain_new).
  add_library(vmcore_pyshim SHARED ${CMAKE_CURRENT_SOURCE_DIR}/python/shim/scripted.c
              $<TARGET_OBJECTS:vmcore_obj>)
  target_include_directories(vmcore_pyshim PRIVATE ${PROJECT_SOURCE_DIR}/include
                             ${PROJECT_SOURCE_DIR}/lib)
  target_link_libraries(vmcore_pyshim PRIVATE PkgConfig::UV PkgConfig::JANSSON
                        PkgConfig::SECCOMP PkgConfig::SLIRP
                        PkgConfig::URING PkgConfig::NFTABLES Threads::Threads)
  target_link_options(vmcore_pyshim PRIVATE
    -Wl,--version-script=${PROJECT_SOURCE_DIR}/lib/vmcore.map -Wl,--no-undefined)
  set_target_properties(vmcore_pyshim PROPERTIES C_VISIBILITY_PRESET hidden)

  set(vmcore_py_env
    "PYTHONPATH=${PROJECT_SOURCE_DIR}/bindings/python"
    "PYTHONDONTWRITEBYTECODE=1"
    "VMCORE_GUEST_DIR=${CMAKE_CURRENT_BINARY_DIR}/guests")
  if(TARGET vmcore_cli)
    list(APPEND vmcore_py_env "VMCORE_CLI=$<TARGET_FILE:vmcore_cli>")
  endif()
  if(TARGET vmcore_oci)
    list(APPEND vmcore_py_env "VMCORE_OCI=$<TARGET_FILE:vmcore_oci>")
  endif()
  if(VMCORE_SANITIZE)
    # An ASan-instrumented library can only be dlopen()ed by python if the runtime is
    # loaded first; the interpreter's own allocations are not ours to leak-check.
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                    OUTPUT_VARIABLE vmcore_libasan OUTPUT_STRIP_TRAILING_WHITESPACE)
    list(APPEND vmcore_py_env "LD_PRELOAD=${vmcore_libasan}" "ASAN_OPTIONS=detect_leaks=0")
  endif()

  add_test(NAME python_bindings
    COMMAND ${VMCORE_PYTHON} -m pytest -q -p no:cacheprovider -m "not scripted"
            ${CMAKE_CURRENT_SOURCE_DIR}/python
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(python_bindings PROPERTIES TIMEOUT 600
    ENVIRONMENT "${vmcore_py_env};VMCORE_LIBRARY=$<TARGET_FILE:vmcore>")

  add_test(NAME python_bindings_scripted
    COMMAND ${VMCORE_PYTHON} -m pytest -q -p no:cacheprovider -m scripted
            ${CMAKE_CURRENT_SOURCE_DIR}/python
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(python_bindings_scripted PROPERTIES TIMEOUT 600
    ENVIRONMENT "${vmcore_py_env};VMCORE_LIBRARY=$<TARGET_FILE:vmcore_pyshim>")

  # Debian's cloud kernel on emu (tests/linux/): fetched at test time into
  # ${PROJECT_BINARY_DIR}/linux (apt-get download, cached there), booted twice: the PCI,
  # ACPI and IOAPIC the guest sees, `poweroff -f`, and vmcore_domain_shutdown() as a
  # power-button press. Labelled `linux`: `ctest -L linux` runs it alone, `-LE linux`
  # leaves it out.
  add_test(NAME linux_emu
    COMMAND ${VMCORE_PYTHON} -m pytest -q -ra -p no:cacheprovider
            ${CMAKE_CURRENT_SOURCE_DIR}/linux
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(linux_emu PROPERTIES TIMEOUT 1800 LABELS linux
    ENVIRONMENT "${vmcore_py_env};VMCORE_LIBRARY=$<TARGET_FILE:vmcore>;VMCORE_BUILD_DIR=${PROJECT_BINARY_DIR}")

  # Everything the two tests exercise (all in ALL too): `cmake --build B --target
  # vmcore_python_test_deps` builds just that.
  add_custom_target(vmcore_python_test_deps)
  add_dependencies(vmcore_python_test_deps vmcore vmcore_pyshim)
  if(TARGET vmcore_cli)
    add_dependencies(vmcore_python_test_deps vmcore_cli)
  endif()
  if(TARGET vmcore_oci)
    add_dependencies(vmcore_python_test_deps vmcore_oci)
  endif()
  if(TARGET vmcore_guests)
    add_dependencies(vmcore_python_test_deps vmcore_guests)
  endif()
endif()
