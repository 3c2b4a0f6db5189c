# settings_table.cmake: turns machine-settings.csv into C source.
#
#   cmake -DCSV=machine-settings.csv -DOUT=settings_table.c -P settings_table.cmake
#
# The CSV is the one source of truth for the settings report (PROTOCOL.md 6).
# Every row is checked here, at build time, so a bad edit to the CSV breaks
# the build instead of sending the service a malformed report.  Rows are
# emitted sorted by code (byte order, as strcmp() sees it) for bsearch().
#
# The file is walked line by line with string(FIND)/string(SUBSTRING) rather
# than file(STRINGS) or CMake lists: list splitting gives ';' and '[' ']' a
# meaning, and a field holding one of them would be silently mangled.

cmake_minimum_required(VERSION 3.18)	# string(HEX)

if(NOT DEFINED CSV OR NOT DEFINED OUT)
  message(FATAL_ERROR "usage: cmake -DCSV=<in.csv> -DOUT=<out.c> -P settings_table.cmake")
endif()
if(NOT EXISTS "${CSV}")
  message(FATAL_ERROR "${CSV}: no such file")
endif()

set(header "code,type,reported,min,max,default")
set(fieldnames code type reported min max default)

# A C string literal holding exactly the bytes of `str`.  Printable ASCII is
# kept as is, except the characters C gives a meaning inside a literal
# (backslash, double quote, and '?' against trigraphs); every other byte
# becomes a three-digit octal escape, which unlike \x cannot swallow the
# digits that follow it.
function(c_literal str outvar)
  string(HEX "${str}" hex)
  string(LENGTH "${hex}" hexlen)
  set(lit "")
  set(i 0)
  while(i LESS hexlen)
    string(SUBSTRING "${hex}" ${i} 2 hh)
    math(EXPR i "${i} + 2")
    math(EXPR v "0x${hh}")
    if(v GREATER_EQUAL 32 AND v LESS 127 AND NOT v EQUAL 34
        AND NOT v EQUAL 63 AND NOT v EQUAL 92)
      string(ASCII ${v} ch)
      string(APPEND lit "${ch}")
    else()
      math(EXPR d1 "${v} / 64")
      math(EXPR d2 "(${v} / 8) % 8")
      math(EXPR d3 "${v} % 8")
      string(APPEND lit "\\${d1}${d2}${d3}")
    endif()
  endwhile()
  set(${outvar} "\"${lit}\"" PARENT_SCOPE)
endfunction()

# Splits one CSV record into row_<name> variables in the caller's scope.
# Fields may be RFC 4180 quoted ("a,b", "say ""hi"""); anything else that
# holds a double quote, or a record without exactly six fields, is an error.
function(split_record line lineno)
  set(rest "${line}")
  set(n 0)
  while(TRUE)
    if(rest MATCHES "^\"")
      if(NOT rest MATCHES "^(\"([^\"]|\"\")*\")(.*)$")
        message(FATAL_ERROR "${CSV}:${lineno}: unterminated quoted field")
      endif()
      set(raw "${CMAKE_MATCH_1}")
      set(after "${CMAKE_MATCH_3}")
      string(LENGTH "${raw}" rawlen)
      math(EXPR innerlen "${rawlen} - 2")
      string(SUBSTRING "${raw}" 1 ${innerlen} field)
      string(REPLACE "\"\"" "\"" field "${field}")
    else()
      string(FIND "${rest}" "," comma)
      if(comma EQUAL -1)
        set(field "${rest}")
        set(after "")
      else()
        string(SUBSTRING "${rest}" 0 ${comma} field)
        string(SUBSTRING "${rest}" ${comma} -1 after)
      endif()
      string(FIND "${field}" "\"" quote)
      if(NOT quote EQUAL -1)
        message(FATAL_ERROR "${CSV}:${lineno}: stray '\"' in an unquoted field")
      endif()
    endif()
    if(n LESS 6)
      list(GET fieldnames ${n} name)
      set(row_${name} "${field}" PARENT_SCOPE)
    endif()
    math(EXPR n "${n} + 1")
    if(after STREQUAL "")
      break()
    elseif(NOT after MATCHES "^,")
      message(FATAL_ERROR "${CSV}:${lineno}: junk after a quoted field")
    endif()
    # After a comma comes one more field, if only an empty one.
    string(SUBSTRING "${after}" 1 -1 rest)
  endwhile()
  if(NOT n EQUAL 6)
    message(FATAL_ERROR "${CSV}:${lineno}: ${n} fields, expected 6 (${header})")
  endif()
endfunction()

set(int_re "^-?[0-9]+$")
set(float_re "^-?([0-9]+|[0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?$")

file(READ "${CSV}" text)
# Accept CRLF files and a missing final newline.
string(REPLACE "\r\n" "\n" text "${text}")
if(NOT text MATCHES "\n$")
  string(APPEND text "\n")
endif()

set(codes "")
set(lineno 0)
set(pos 0)
string(LENGTH "${text}" textlen)
while(pos LESS textlen)
  string(SUBSTRING "${text}" ${pos} -1 tail)
  string(FIND "${tail}" "\n" nl)
  string(SUBSTRING "${tail}" 0 ${nl} line)
  math(EXPR pos "${pos} + ${nl} + 1")
  math(EXPR lineno "${lineno} + 1")

  if(lineno EQUAL 1)
    if(NOT line STREQUAL header)
      message(FATAL_ERROR "${CSV}:1: header is '${line}', expected '${header}'")
    endif()
    continue()
  endif()
  if(line STREQUAL "")
    continue()
  endif()

  split_record("${line}" ${lineno})

  if(NOT row_code MATCHES "^[A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9]$")
    message(FATAL_ERROR "${CSV}:${lineno}: bad code '${row_code}' (4 letters or digits)")
  endif()
  if(DEFINED seen_${row_code})
    message(FATAL_ERROR "${CSV}:${lineno}: duplicate code ${row_code} (first on line ${seen_${row_code}})")
  endif()
  set(seen_${row_code} ${lineno})

  if(row_type STREQUAL "int")
    set(ctype SETTINGS_INT)
    set(num_re "${int_re}")
  elseif(row_type STREQUAL "float")
    set(ctype SETTINGS_FLOAT)
    set(num_re "${float_re}")
  elseif(row_type STREQUAL "str")
    set(ctype SETTINGS_STR)
    set(num_re "")
  else()
    message(FATAL_ERROR "${CSV}:${lineno}: ${row_code}: bad type '${row_type}' (int, float or str)")
  endif()

  if(NOT row_reported MATCHES "^[01]$")
    message(FATAL_ERROR "${CSV}:${lineno}: ${row_code}: reported is '${row_reported}', expected 0 or 1")
  endif()

  # Numbers must parse as numbers of their type, or the report would send
  # garbage; an empty default means "none" (0, unless overridden).
  if(num_re)
    foreach(f default min max)
      if(NOT row_${f} STREQUAL "" AND NOT row_${f} MATCHES "${num_re}")
        message(FATAL_ERROR "${CSV}:${lineno}: ${row_code}: ${f} '${row_${f}}' is not of type ${row_type}")
      endif()
    endforeach()
    # The report carries numbers as doubles: integers must be exact.
    if(row_type STREQUAL "int")
      foreach(f default min max)
        string(REGEX MATCH "[1-9][0-9]*$" digits "${row_${f}}")
        string(LENGTH "${digits}" ndigits)
        if(ndigits GREATER 15)
          message(FATAL_ERROR "${CSV}:${lineno}: ${row_code}: ${f} '${row_${f}}' is too large to report exactly")
        endif()
      endforeach()
    endif()
  endif()

  c_literal("${row_default}" c_def)
  c_literal("${row_min}" c_min)
  c_literal("${row_max}" c_max)
  set(entry_${row_code}
    "\t{ \"${row_code}\", ${ctype}, ${row_reported}, ${c_def}, ${c_min}, ${c_max} },\n")
  list(APPEND codes "${row_code}")
endwhile()

list(LENGTH codes ncodes)
if(ncodes EQUAL 0)
  message(FATAL_ERROR "${CSV}: no settings")
endif()
list(SORT codes COMPARE STRING CASE SENSITIVE)

set(out "/* Generated from ${CSV} by settings_table.cmake: do not edit. */\n")
string(APPEND out "#include \"settings.h\"\n\n")
string(APPEND out "const struct settings_row settings_table[] = {\n")
foreach(code IN LISTS codes)
  string(APPEND out "${entry_${code}}")
endforeach()
string(APPEND out "};\n\n")
string(APPEND out "const size_t settings_table_len =\n")
string(APPEND out "    sizeof(settings_table) / sizeof(settings_table[0]);\n")

# Write beside and rename, so an interrupted run never leaves a half file
# that a later build would take as up to date.
file(WRITE "${OUT}.tmp" "${out}")
file(RENAME "${OUT}.tmp" "${OUT}")
