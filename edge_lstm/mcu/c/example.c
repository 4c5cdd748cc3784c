/* How to call the library, as a program for this machine: rows of float32 on stdin (EDGE_LSTM_FEATURES
 * a row, as the model's input), the class after each row (streaming) and of the whole sequence. On a
 * microcontroller, read_row() reads your sensor instead, and nothing else changes.
 *
 *   cc -O2 -o classify example.c edge_lstm.c edge_lstm_model.c && ./classify < rows.f32
 */
#include <stdio.h>
#include "edge_lstm.h"

static int read_row(float row[EDGE_LSTM_FEATURES]) {
    return fread(row, sizeof(float), EDGE_LSTM_FEATURES, stdin) == EDGE_LSTM_FEATURES;
}

static int best(const float logits[EDGE_LSTM_CLASSES]) {
    int k = 0;
    for (int j = 1; j < EDGE_LSTM_CLASSES; j++)
        if (logits[j] > logits[k]) k = j;
    return k;
}

int main(void) {
    float row[EDGE_LSTM_FEATURES], logits[EDGE_LSTM_CLASSES];
    int n = 0;
    edge_lstm_reset();
    while (read_row(row)) {
        edge_lstm_step(row, logits); /* the answer so far, after each row */
        printf("row %d: %s\n", ++n, edge_lstm_classes[best(logits)]);
    }
    if (n == 0) {
        fprintf(stderr, "no rows on stdin: give %d float32 values a row\n", EDGE_LSTM_FEATURES);
        return 1;
    }
    printf("class: %s\n", edge_lstm_classes[best(logits)]);
    return 0;
}
