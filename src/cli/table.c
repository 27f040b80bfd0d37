/*  table.c: aligned text tables.

    Cells live in one growing array, row after row; widths are worked out
    when printing, in one pass over the cells, so adding a row is O(1)
    amortized and printing O(cells).                                       */
#include "table.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*  One cell: its cleaned text and colour.                                 */
typedef struct {
    char *text;                 /* owned, cleaned, never NULL              */
    size_t width;               /* characters in text                      */
    cli_color_t color;          /* how to print it when colour is on       */
} s_cell_t;

/*  Invariant: `count` cells are filled, row-major; the header row, when
    there is one, is cells [0, columns).                                   */
struct cli_table {
    size_t columns;             /* cells per row                           */
    bool has_header;            /* the first row is the header             */
    s_cell_t *cells;            /* `capacity` slots, `count` used          */
    size_t count;               /* cells filled                            */
    size_t capacity;            /* slots allocated                         */
};

/*  Bytes one cleaned cell may take: each character at most 4 bytes.      */
#define S_CELL_BYTES (CLI_TABLE_CELL_MAX * 4 + 4)

size_t
cli_text_width (const char *text)
{
    size_t width = 0;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        width += (*c & 0xC0) != 0x80;
    return width;
}

size_t
cli_text_clean (const char *text, char *out, size_t size, size_t max_chars)
{
    size_t used = 0;
    size_t chars = 0;
    const unsigned char *c = (const unsigned char *) text;
    if (size == 0)
        return 0;
    while (*c) {
        //  Length of this character's UTF-8 sequence; a broken sequence
        //  shows as '?', one byte at a time.
        size_t len = *c < 0x80 ? 1 : *c < 0xC0 ? 0 : *c < 0xE0 ? 2
                     : *c < 0xF0 ? 3 : *c < 0xF8 ? 4 : 0;
        for (size_t i = 1; i < len; i++)
            if ((c[i] & 0xC0) != 0x80)
                len = 0;
        bool broken = len == 0;
        if (broken)
            len = 1;
        if (chars + 1 > max_chars || used + len + 1 > size) {
            //  Cut: replace the tail by "..." (3 characters, 3 bytes).
            while (chars + 3 > max_chars || used + 4 > size) {
                if (used == 0)
                    break;
                do
                    used--;
                while (used > 0 && ((unsigned char) out[used] & 0xC0) == 0x80);
                chars--;
            }
            if (used + 4 <= size) {
                memcpy (out + used, "...", 3);
                used += 3;
                chars += 3;
            }
            break;
        }
        if (broken || *c < 0x20 || *c == 0x7F) {
            out[used++] = '?';
            c++;
        }
        else {
            memcpy (out + used, c, len);
            used += len;
            c += len;
        }
        chars++;
    }
    out[used] = '\0';
    return chars;
}

cli_table_t *
cli_table_new (size_t columns, const char *const *headers)
{
    if (columns == 0 || columns > CLI_TABLE_COLUMNS_MAX)
        return NULL;
    cli_table_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->columns = columns;
    if (headers) {
        self->has_header = true;
        for (size_t i = 0; i < columns; i++)
            if (cli_table_add (self, headers[i], CLI_COLOR_NONE)) {
                cli_table_destroy (&self);
                return NULL;
            }
    }
    return self;
}

void
cli_table_destroy (cli_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cli_table_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free (self->cells[i].text);
    free (self->cells);
    free (self);
    *self_p = NULL;
}

size_t
cli_table_rows (const cli_table_t *self)
{
    size_t rows = (self->count + self->columns - 1) / self->columns;
    return self->has_header && rows > 0 ? rows - 1 : rows;
}

int
cli_table_add (cli_table_t *self, const char *text, cli_color_t color)
{
    if (self->count % self->columns == 0
        && cli_table_rows (self) >= CLI_TABLE_ROWS_MAX)
        return -1;
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 64;
        s_cell_t *cells = realloc (self->cells, capacity * sizeof *cells);
        if (!cells)
            return -1;
        self->cells = cells;
        self->capacity = capacity;
    }
    char clean[S_CELL_BYTES];
    size_t width = cli_text_clean (text ? text : "-", clean, sizeof clean,
                                   CLI_TABLE_CELL_MAX);
    char *copy = strdup (clean);
    if (!copy)
        return -1;
    self->cells[self->count++] = (s_cell_t) { copy, width, color };
    return 0;
}

int
cli_table_addf (cli_table_t *self, const char *format, ...)
{
    char text[S_CELL_BYTES];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    return cli_table_add (self, text, CLI_COLOR_NONE);
}

void
cli_table_print (const cli_table_t *self, FILE *out, bool color)
{
    size_t widths[CLI_TABLE_COLUMNS_MAX] = { 0 };
    cli_table_print_aligned (self, out, color, widths);
}

void
cli_table_print_aligned (const cli_table_t *self, FILE *out, bool color,
                         size_t *widths)
{
    for (size_t i = 0; i < self->count; i++) {
        size_t column = i % self->columns;
        if (self->cells[i].width > widths[column])
            widths[column] = self->cells[i].width;
    }
    size_t rows = (self->count + self->columns - 1) / self->columns;
    for (size_t row = 0; row < rows; row++) {
        for (size_t column = 0; column < self->columns; column++) {
            size_t i = row * self->columns + column;
            const s_cell_t *cell = i < self->count ? &self->cells[i] : NULL;
            bool last = column + 1 == self->columns;
            const char *text = cell ? cell->text : "";
            size_t width = cell ? cell->width : 0;
            bool colored = color && cell && cell->color != CLI_COLOR_NONE;
            fprintf (out, "%s%s%s", colored ? cli_color_start (cell->color) : "",
                     text, colored ? CLI_COLOR_END : "");
            if (!last)
                fprintf (out, "%*s", (int) (widths[column] - width + 2), "");
        }
        fputc ('\n', out);
    }
}

cli_color_t
cli_state_color (const char *state)
{
    static const struct {
        const char *state;
        cli_color_t color;
    } colors[] = {
        { "succeeded", CLI_COLOR_GREEN },
        { "failed", CLI_COLOR_RED },
        { "running", CLI_COLOR_YELLOW },
        { "canceled", CLI_COLOR_MAGENTA },
        { "pending", CLI_COLOR_DIM },
        { "created", CLI_COLOR_BLUE },
    };
    for (size_t i = 0; state && i < sizeof colors / sizeof colors[0]; i++)
        if (strcmp (colors[i].state, state) == 0)
            return colors[i].color;
    return CLI_COLOR_NONE;
}

const char *
cli_color_start (cli_color_t color)
{
    static const char *const starts[] = {
        [CLI_COLOR_NONE] = "",
        [CLI_COLOR_RED] = "\033[31m",
        [CLI_COLOR_GREEN] = "\033[32m",
        [CLI_COLOR_YELLOW] = "\033[33m",
        [CLI_COLOR_BLUE] = "\033[34m",
        [CLI_COLOR_MAGENTA] = "\033[35m",
        [CLI_COLOR_DIM] = "\033[2m",
    };
    return (size_t) color < sizeof starts / sizeof starts[0] ? starts[color]
                                                             : "";
}
