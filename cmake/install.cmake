# install.cmake -- what `cmake --install` (and so the Debian package,
# debian/rules) puts where, and the generated man page orderflow.cfg(5).
#
#   sbin/orderflow                              the server
#   share/orderflow/migrations/*.sql            found without an environment
#                                               variable when OF_MIGRATIONS_DIR is set
#   /etc/orderflow/orderflow.cfg                the commented settings (config/)
#   OF_SYSTEMD_UNITDIR/orderflow.{service,socket}  systemd/, ExecStart pointed at sbin
#   share/man/man8/orderflow.8                  docs/man/orderflow.8 (hand-written)
#   share/man/man5/orderflow.cfg.5              generated: orderflow config-reference --man
#   share/bash-completion/completions/orderflow deploy/bash-completion/orderflow
include(GNUInstallDirs)

set(OF_SYSTEMD_UNITDIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" CACHE PATH
    "where the systemd units are installed (Debian 12: /lib/systemd/system)")

# orderflow.cfg(5) from the key table the parser uses, so it cannot drift.
set(OF_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(OF_MAN5 ${OF_MAN_DIR}/orderflow.cfg.5)
add_custom_command(
  OUTPUT ${OF_MAN5}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${OF_MAN_DIR}
  COMMAND sh -c "\"$1\" config-reference --man > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
          sh $<TARGET_FILE:orderflow> ${OF_MAN5}
  DEPENDS orderflow
  COMMENT "Generating orderflow.cfg(5) from the settings table"
  VERBATIM)
add_custom_target(of_man ALL DEPENDS ${OF_MAN5})

# The units as systemd/ has them, with ExecStart at the installed binary.
foreach(unit orderflow.service orderflow.socket)
  file(READ ${CMAKE_SOURCE_DIR}/systemd/${unit} _of_unit)
  string(REPLACE "/usr/local/bin/orderflow" "${CMAKE_INSTALL_FULL_SBINDIR}/orderflow" _of_unit "${_of_unit}")
  file(WRITE ${CMAKE_BINARY_DIR}/systemd/${unit} "${_of_unit}")
  install(FILES ${CMAKE_BINARY_DIR}/systemd/${unit} DESTINATION ${OF_SYSTEMD_UNITDIR})
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_SOURCE_DIR}/systemd/orderflow.service ${CMAKE_SOURCE_DIR}/systemd/orderflow.socket)

install(TARGETS orderflow RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/migrations/ DESTINATION ${CMAKE_INSTALL_DATADIR}/orderflow/migrations
        FILES_MATCHING PATTERN "*.sql")
install(FILES ${CMAKE_SOURCE_DIR}/config/orderflow.cfg DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/orderflow)
install(FILES ${CMAKE_SOURCE_DIR}/docs/man/orderflow.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${OF_MAN5} DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/bash-completion/orderflow
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
