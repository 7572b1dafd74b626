"""What a sample is: the config, the motion classes, the camera, the drawing, making samples in bulk
and the quality measures. Pure numpy and OpenCV: nothing here reads or writes a file."""
