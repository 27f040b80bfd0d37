/*  table.h: aligned text tables for the `shoal` command line.

    A table collects rows of cells, then prints them with each column as
    wide as its widest cell (in characters, not bytes, so UTF-8 names line
    up), two spaces between columns and no padding after the last one.
    A cell may carry a colour, used only when printing asks for colour.

    Cells are copied, control characters replaced by '?' (a name or an
    error from the API must not move the cursor or clear the screen), and
    cut at CLI_TABLE_CELL_MAX characters with "..." so one long error does
    not stretch every row. A table holds at most CLI_TABLE_ROWS_MAX rows. */
#ifndef SHOAL_CLI_TABLE_H
#define SHOAL_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_TABLE_COLUMNS_MAX 16
#define CLI_TABLE_CELL_MAX 200
#define CLI_TABLE_ROWS_MAX 10000000

/*  Colours of a cell (ANSI foreground colours).                           */
typedef enum {
    CLI_COLOR_NONE = 0,
    CLI_COLOR_RED,
    CLI_COLOR_GREEN,
    CLI_COLOR_YELLOW,
    CLI_COLOR_BLUE,
    CLI_COLOR_MAGENTA,
    CLI_COLOR_DIM,
} cli_color_t;

typedef struct cli_table cli_table_t;

/*  Makes a table with `columns` columns (1 to CLI_TABLE_COLUMNS_MAX) and
    a header row `headers` (copied), or no header row when `headers` is
    NULL. Returns NULL when out of memory.                                 */
cli_table_t *cli_table_new (size_t columns, const char *const *headers);

/*  Frees the table; accepts NULL and a NULL *self_p; nulls *self_p.       */
void cli_table_destroy (cli_table_t **self_p);

/*  Appends one cell to the current row, starting a new row when the last
    one is full. `text` NULL shows as "-". Returns 0, or -1 when out of
    memory or over CLI_TABLE_ROWS_MAX (the table then stays usable, with
    what it had).                                                          */
int cli_table_add (cli_table_t *self, const char *text, cli_color_t color);

/*  Like cli_table_add, with printf formatting and no colour.              */
int cli_table_addf (cli_table_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  The number of rows, the header row not counted.                        */
size_t cli_table_rows (const cli_table_t *self);

/*  Prints the table to `out`, coloured when `color` is true. A row left
    short is padded with empty cells.                                      */
void cli_table_print (const cli_table_t *self, FILE *out, bool color);

/*  Prints the table with each column at least `widths[column]` wide, and
    sets `widths` to the widths used: a long list printed a page at a time
    lines up with its first page (a wider cell later widens its column
    from there on). `widths` has the table's column count.                */
void cli_table_print_aligned (const cli_table_t *self, FILE *out, bool color,
                              size_t *widths);

/*  The colour that goes with a job, stage or task state ("succeeded" is
    green, "failed" red, ...); CLI_COLOR_NONE for anything else.           */
cli_color_t cli_state_color (const char *state);

/*  The escape sequence that starts `color`, "" for CLI_COLOR_NONE, and
    the one that ends it.                                                  */
const char *cli_color_start (cli_color_t color);
#define CLI_COLOR_END "\033[0m"

/*  Copies `text` into `out` (`size` bytes), replacing control characters
    by '?' and cutting it, with "...", at `max_chars` characters. Returns
    the number of characters (not bytes) written.                          */
size_t cli_text_clean (const char *text, char *out, size_t size,
                       size_t max_chars);

/*  The number of characters (UTF-8 code points) in `text`.                */
size_t cli_text_width (const char *text);

#endif
