// peerpods-model: encrypts, inspects and decrypts models in the peerpods encrypted-model format.
#include "model/model_cli.h"

int main(int argc, char** argv) { return pp::model::ModelCliMain(argc, argv); }
