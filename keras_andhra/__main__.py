from keras_andhra.cli import main

main()
